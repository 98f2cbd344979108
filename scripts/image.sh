#!/bin/sh
# Builds the container image dialkv:dev (or $IMAGE) from static binaries, FROM scratch: no
# registry is needed. Usage: scripts/image.sh [IMAGE]. Also leaves the static binaries in
# bin/static/. Exits non-zero with the reason when Docker does not answer.
set -eu

image=${1:-${IMAGE:-dialkv:dev}}
root=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-go}

docker info >/dev/null 2>&1 || { echo "image.sh: no Docker engine answers (docker info failed)" >&2; exit 1; }

out="$root/bin/static"
mkdir -p "$out"
echo "image.sh: building static kvd and kvctl into $out"
(cd "$root" && CGO_ENABLED=0 "$go" build -tags hashicorpmetrics -trimpath -ldflags='-s -w' -o "$out/" ./cmd/kvd ./cmd/kvctl)

ctx=$(mktemp -d "${TMPDIR:-/tmp}/dialkv-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
cp "$out/kvd" "$out/kvctl" "$root/deploy/docker/Dockerfile" "$ctx/"
mkdir "$ctx/data"

# The legacy builder is enough (COPY --chown, HEALTHCHECK) and needs no buildx plugin.
echo "image.sh: docker build -t $image"
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -q -t "$image" \
	--label org.opencontainers.image.source=https://github.com/dialkv/dialkv \
	--label org.opencontainers.image.revision="$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	"$ctx" >/dev/null
docker image inspect --format 'image.sh: {{index .RepoTags 0}} {{.Id}} {{.Size}} bytes' "$image"

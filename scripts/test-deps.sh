#!/usr/bin/env bash
# Installs the Debian packages some tests use, when they are missing and we may (root with
# apt-get): nftables and iproute2 (the netns partition backend), chromium (the dashboard's
# browser test) and prometheus (promtool checks the metrics' names). Best effort: without them
# those tests skip with a printed reason, so a failure here is a warning, never an error.
set -u
declare -A need=([nft]=nftables [ip]=iproute2 [chromium]=chromium [promtool]=prometheus)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: missing ${missing[*]} (not root or no apt-get): the tests that need them will skip" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
if ! timeout 600 apt-get update -qq >/dev/null 2>&1 ||
   ! timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  echo "test-deps: could not install ${missing[*]}: the tests that need them will skip" >&2
fi
# Debian's prometheus package starts a server where it can; the tests only want promtool.
pkill -x prometheus 2>/dev/null || true
exit 0

# dialkv. Every go command carries -tags hashicorpmetrics: see the replace directive in go.mod.
GO       ?= go
TAGS     := -tags hashicorpmetrics
BIN      := bin
# make cluster NODES=5: the local cluster's size (default 3, or as many as ./data holds).
NODES    ?=
# make cluster BASE_PORT=17000: node i on ports B+i, B+100+i, B+200+i (default 7000, or where
# the cluster ./data holds already is), e.g. beside another local cluster.
BASE_PORT ?=

.PHONY: all build test test-deps test-image test-short cluster cluster-down jepsen jepsen-soak jepsen-selftest bench bench-scale image vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(TAGS) -o $(BIN)/ ./cmd/...

# The whole suite, with the race detector. System tests build the binaries themselves. Tests
# that need nftables, chromium or promtool skip with a printed reason where those are missing;
# test-deps installs them first when it can (root with apt-get).
test: build test-deps test-image
	$(GO) vet $(TAGS) ./...
	$(GO) test $(TAGS) -race -count=1 -timeout 9m ./...
	@echo "make test: every Go benchmark once (-benchtime 1x), so that none breaks unnoticed"
	$(GO) test $(TAGS) -run '^$$' -bench . -benchtime 1x -count=1 -timeout 3m ./...

test-deps:
	@scripts/test-deps.sh

# The container tests run the dialkv:dev image: rebuild it from this checkout first, or they
# would test whatever code built it last.
test-image:
	@if docker info >/dev/null 2>&1; then scripts/image.sh; else echo "make test: no Docker engine answers: the container tests will skip"; fi

test-short:
	$(GO) test $(TAGS) -short -count=1 ./...

# A local 3-node cluster on 127.0.0.1 (HTTP 7001-7003, or BASE_PORT+1...), data under ./data.
# Without NODES, a cluster ./data already holds comes back at its own size (and ports).
cluster: build
	$(BIN)/kvctl cluster up$(if $(NODES), --nodes $(NODES))$(if $(BASE_PORT), --base-port $(BASE_PORT))

cluster-down: build
	$(BIN)/kvctl cluster down

# The standard load matrix against a fresh local 3-node cluster (ports 7001-7003, 7101-7103 and
# 7201-7203 must be free; BENCH_BASE_PORT=27000 moves them, e.g. beside make cluster), one table
# out, about two minutes. See docs/performance.md.
bench: build
	scripts/bench.sh

# How cost grows with cluster size: strong and eventual put latency at 3, 5 and 7 nodes, and the
# time an eventual write takes to reach every node at 3, 5, 7 and 9 (ports 7001-7009, 7101-7109
# and 7201-7209 must be free); one table out, docs/scaling.svg redrawn, about two and a half minutes.
bench-scale: build
	scripts/scale.sh

# The partition test (issue 7): register, mixed, set, session, delete and staleness workloads under
# partitions, kills, pauses, member removals, partitions with clock skew and slow or lossy links on
# 5 nodes, each in its own network namespace (root on Linux; about 75 s). Exit 0 only on PASS; history, plots and report.md under jepsen/store/.
jepsen: build test-deps
	$(BIN)/kvjepsen --backend netns --workload register,mixed,set,session,delete,staleness --nemesis partition,kill,pause,member,partition+clock,slow --nodes 5 --time 60s --clients 16 --rate 300 --bin $(BIN)

# The same for 8 minutes, with clock strobes alone too (about 9 minutes): the rarer faults show up
# here first (a bounded-read breach after partitions heal did, in session 10).
jepsen-soak: build test-deps
	$(BIN)/kvjepsen --backend netns --workload register,mixed,set,session,delete,staleness --nemesis partition,kill,pause,member,partition+clock,slow,clock --nodes 5 --time 480s --clients 16 --rate 300 --bin $(BIN)

# Does the harness catch bugs? kvd built with -tags plantbugs into bin/plantbugs (never bin/:
# that kvd is broken on purpose), then kvjepsen selftest: one short run per planted bug
# (internal/plant: strong reads without a read index, strong writes acknowledged before commit,
# eventual writes acknowledged before they are durable, last-writer-wins inverted, session reads
# ignoring the token, bounded reads ignoring max_staleness, tombstones purged without the
# members' acknowledgement), each with the workload and nemesis that catch it, and one run with
# no bug planted. Exit 0 only if every planted bug FAILS its run by the checker expected and the
# control run PASSES. Local backend (no root), 3 nodes; about 4 minutes; runs under jepsen/store/.
jepsen-selftest: build
	@mkdir -p $(BIN)/plantbugs
	$(GO) build -tags hashicorpmetrics,plantbugs -o $(BIN)/plantbugs/ ./cmd/kvd ./cmd/kvctl
	$(BIN)/kvjepsen selftest --bin $(BIN)/plantbugs

# The container image dialkv:dev (FROM scratch, static kvd and kvctl; no registry needed).
image:
	scripts/image.sh

vet:
	$(GO) vet $(TAGS) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

# dialkv. Every go command carries -tags hashicorpmetrics: see the replace directive in go.mod.
GO       ?= go
TAGS     := -tags hashicorpmetrics
BIN      := bin
NODES    ?= 3

.PHONY: all build test test-short cluster cluster-down jepsen bench vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(TAGS) -o $(BIN)/ ./cmd/...

# The whole suite, with the race detector. System tests build the binaries themselves.
test: build
	$(GO) vet $(TAGS) ./...
	$(GO) test $(TAGS) -race -count=1 -timeout 9m ./...

test-short:
	$(GO) test $(TAGS) -short -count=1 ./...

# A local 3-node cluster on 127.0.0.1 (HTTP 7001-7003), data under ./data.
cluster: build
	$(BIN)/kvctl cluster up --nodes $(NODES)

cluster-down: build
	$(BIN)/kvctl cluster down

vet:
	$(GO) vet $(TAGS) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

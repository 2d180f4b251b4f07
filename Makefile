# minik — build, test and measure.
SHELL := bash
GO ?= go
MINIK_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
KUBE_VERSION := v1.37.2
BUILD_DATE := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
GIT_COMMIT := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)

# kubectl parses the server's and its own version from these, so both
# binaries are stamped like an upstream release build.
VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
LDFLAGS := -s -w -X minik.dev/minik/version.Version=$(MINIK_VERSION) \
	$(foreach p,$(VERSION_PKGS),-X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37 \
	-X $(p).gitCommit=$(GIT_COMMIT) -X $(p).gitTreeState=clean -X $(p).buildDate=$(BUILD_DATE))
export CGO_ENABLED := 0

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

.PHONY: build
build: bin/minik bin/minik-node ## build bin/minik and bin/minik-node (static, version stamped)

# Go's own cache decides what to rebuild; the targets always ask it.
.PHONY: bin/minik bin/minik-node
bin/minik:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/minik
bin/minik-node:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/minik-node

# -trimpath as in the build: the tests then reuse the build's compiled
# control plane instead of compiling it a second time.
.PHONY: test
test: build ## run unit and integration tests (integration tests start real clusters), then race
	MINIK_NODE_BINARY=$(CURDIR)/bin/minik-node MINIK_BINARY=$(CURDIR)/bin/minik \
		$(GO) test -trimpath -p 1 -count=1 -timeout 40m ./...
	$(MAKE) race

# The packages that run goroutines of their own.
RACE_PKGS ?= ./kubelet/... ./tui/... ./cluster/... ./kubeconfig/... ./filelock/...

# The race detector needs cgo (and a C compiler), so this one command
# overrides the CGO_ENABLED=0 exported above.
.PHONY: race
race: ## run the fast tests of the packages that run goroutines under the race detector (needs gcc)
	CGO_ENABLED=1 $(GO) test -race -trimpath -short -count=1 $(RACE_PKGS)

.PHONY: unit
unit: ## run the fast tests only (no cluster)
	$(GO) test -short -count=1 ./...

# The Gateway API conformance suite (profile GATEWAY-HTTP) against a docker
# cluster; the report goes to docs/gateway-conformance-report.yaml.
.PHONY: gateway-conformance
gateway-conformance: build ## run the Gateway API conformance suite (GATEWAY-HTTP) against a docker cluster
	MINIK_GATEWAY_CONFORMANCE=1 MINIK_NODE_BINARY=$(CURDIR)/bin/minik-node MINIK_BINARY=$(CURDIR)/bin/minik \
		MINIK_GATEWAY_REPORT=$(CURDIR)/docs/gateway-conformance-report.yaml \
		$(GO) test -trimpath -count=1 -timeout 60m -v ./hack/gatewayconformance/

.PHONY: bench
# PEERS=kwok: instead, the same scenarios on minik and kwok side by side.
bench: build ## time minik start to ready (fresh and restart), by phase, and node RSS; PEERS=kwok compares with kwok
	MINIK_NODE_BINARY=$(CURDIR)/bin/minik-node $(GO) run ./hack/bench $(if $(PEERS),-peers $(PEERS))

.PHONY: reliability
reliability: build ## stop/start soak, kill -9 of every node, kill -9 during writes (process and docker), a Docker Engine restart; objects lost
	MINIK_NODE_BINARY=$(CURDIR)/bin/minik-node $(GO) run ./hack/reliability

# minik-node under Go's race detector, through a workload on a process
# cluster: races in minik's code fail it, upstream ones are listed.
.PHONY: race-cluster
race-cluster: build ## run a cluster whose minik-node has the race detector through a workload; fail on races in minik's code (needs gcc)
	CGO_ENABLED=1 $(GO) build -race -trimpath -o bin/minik-node-race ./cmd/minik-node
	$(GO) run ./hack/racecluster -minik bin/minik -node bin/minik-node-race

# Every Fuzz test of the repository, FUZZTIME each; `make test` runs only
# their seeds. A failure's input lands in the package's testdata/fuzz.
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## run every fuzz test for FUZZTIME each (default 30s)
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9]*\)(.*/\1/p' $$f); do \
			echo "== $$(dirname $$f) $$name"; \
			$(GO) test -trimpath -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f) || exit 1; \
		done; done

# vet builds with -trimpath as the build does, so a cold CI run compiles
# the control plane once for both, not twice (~9 minutes on 2 cores).
# The upstream suite, offline: FOCUS, SKIP, DRIVER and NODES select, PROCS
# runs the specs not labelled Serial in that many processes; the report
# and summary land in _output/conformance.
FOCUS ?= \[Conformance\]
SKIP ?=
DRIVER ?= docker
NODES ?= 3
PROCS ?= 4
.PHONY: conformance
conformance: build ## run the upstream conformance suite against a fresh cluster (~50 min on 2 cores; FOCUS/SKIP/DRIVER/NODES/PROCS select)
	$(GO) run ./hack/conformance -focus '$(FOCUS)' -skip '$(SKIP)' -driver $(DRIVER) -nodes $(NODES) -procs $(PROCS)

.PHONY: verify
verify: ## gofmt, go vet, go mod tidy diff, cross-build of minik, vet of minik for windows, no k8s.io/kubernetes in minik
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet -trimpath ./...
	@cp go.mod /tmp/minik-go.mod.bak; cp go.sum /tmp/minik-go.sum.bak; $(GO) mod tidy; \
		if ! diff -q go.mod /tmp/minik-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/minik-go.sum.bak >/dev/null; then \
		cp /tmp/minik-go.mod.bak go.mod; cp /tmp/minik-go.sum.bak go.sum; echo 'go mod tidy changes go.mod/go.sum: run it and commit'; exit 1; fi
	@for p in linux/amd64 linux/arm64 darwin/arm64 darwin/amd64 windows/amd64; do \
		echo "cross-build cmd/minik for $$p"; GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/minik || exit 1; done
	@echo "vet minik for windows/amd64"; GOOS=windows $(GO) vet ./cmd/minik ./cli/... ./cluster/... ./drivers/... ./node-image/... ./kubeconfig/... ./tui/...
	@if $(GO) list -deps ./cmd/minik | grep -q '^k8s.io/kubernetes'; then echo 'cmd/minik imports k8s.io/kubernetes'; exit 1; fi
	@echo verify ok

.PHONY: clean
clean: ## remove built binaries
	rm -rf bin

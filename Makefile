# BackApp. `make test` and `make dev` are the two commands a fresh clone
# needs; both build or install whatever they use (see hack/tools.sh).

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
# Packages run in parallel; each package with real components starts its
# own apiserver, PostgreSQL and MinIO, so two at a time suits 2 cores.
TEST_PARALLEL ?= 2
TEST_TIMEOUT ?= 30m
# Test environment paths from the one place that pins the tool versions.
TOOLS_ENV = $(shell hack/tools.sh env | tr '\n' ' ')

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Everyday

.PHONY: test
test: tools lint ## Build/install every tool, lint, then run every test.
	env $(TOOLS_ENV) $(GO) test -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) -count=1 ./...

.PHONY: dev
dev: tools-dev ## Run BackApp locally: apiserver+etcd, PostgreSQL, MinIO, CRDs.
	env $(TOOLS_ENV) $(GO) run ./cmd/backapp dev

.PHONY: bench
bench: tools ## Run the benchmarks (speed and memory targets).
	env $(TOOLS_ENV) $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

##@ Code generation

.PHONY: generate
generate: tools-gen ## Write zz_generated.deepcopy.go.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: tools-gen ## Write the CRDs (config/crd/bases) and RBAC (config/rbac/role.yaml).
	$(CONTROLLER_GEN) crd rbac:roleName=backapp-manager paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

##@ Checks

.PHONY: lint
lint: tools-lint ## go vet and golangci-lint.
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -s -w $$(git ls-files '*.go')

##@ Tools (pinned, cached in bin/)

.PHONY: tools tools-dev tools-gen tools-lint
tools: ## Build or install every tool the tests need.
	hack/tools.sh all
tools-dev:
	hack/tools.sh envtest
	hack/tools.sh minio
	hack/tools.sh postgres
tools-gen:
	hack/tools.sh controller-gen
tools-lint:
	hack/tools.sh golangci-lint

.PHONY: clean
clean: ## Remove built tools and binaries.
	rm -rf bin

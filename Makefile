# The test command of the README: installs its own prerequisites, then runs
# the formatters, linters and every test, including those against real PyPI.
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: test prereqs lint unit build bench

test: prereqs lint unit

prereqs:
	./scripts/prereqs.sh

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# BITPOLL_ROOTFS: the system tests' root file system, as prereqs built
# it; empty (those tests skip) where it could not be built.
unit:
	BITPOLL_ROOTFS="$${BITPOLL_ROOTFS:-$$(./scripts/rootfs.sh 2>/dev/null)}" $(GO) test -count=1 -timeout 45m ./...

build:
	$(GO) build -o bin/bitpoll-install ./cmd/bitpoll-install

# Benchmarks compare against uv (and pip) in the same run; see the README.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./resolve/... ./install/

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
	$(GO) vet -tags crashhook ./cmd/bitpoll-install
	$(STATICCHECK) -tags crashhook ./cmd/bitpoll-install

# go test ./... with the system tests' root file system as prereqs built
# it, and the mirrors of ../shared/fixtures where they exist; ends with a
# summary line. See scripts/unit.sh.
unit:
	GO=$(GO) ./scripts/unit.sh

build:
	$(GO) build -o bin/bitpoll-install ./cmd/bitpoll-install

# Benchmarks compare against uv (and pip) in the same run; see the README.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./resolve/... ./install/

# Every target installs what it needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
LAKE ?= demo-lake
EVENTS ?= 100000
export CARGO_TARGET_DIR ?= target

.PHONY: help demo test check fmt lint unit pydeps bench lambdas

help: ## List the targets
	@grep -E '^[a-z_]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

demo: ## The whole path on a local folder, offline: generate, ingest, compact, query
	rm -rf $(LAKE)
	$(CARGO) run --quiet -- demo --lake $(LAKE) --events $(EVENTS)

test: pydeps fmt lint ## Everything: format, lints, unit, integration, cross-engine and emulated-AWS tests
	$(CARGO) build --workspace --all-targets
	CI=$${CI:-} $(CARGO) test --workspace --all-targets

fmt: ## Check formatting
	$(CARGO) fmt --all -- --check

lint: ## Clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

pydeps: ## What the tests use: moto (emulated AWS), cargo-lambda, Python deltalake
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

lambdas: ## Deployable arm64 zips of both Lambdas in target/lambda/ (release, cross-compiled with zig)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check cargo-lambda ziglang
	rustup target add aarch64-unknown-linux-gnu
	$(CARGO) lambda build --release --arm64 --output-format zip \
		--package lakehouse-ingest --package lakehouse-compact
	@ls -l $(CARGO_TARGET_DIR)/lambda/*/bootstrap.zip

bench: ## Release build; 1M events: ingest and compact vs a Python reference (see README)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/bench/requirements.txt
	$(CARGO) build --release --quiet
	tests/bench/run.sh

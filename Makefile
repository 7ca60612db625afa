# Set-up and checks. Needs python3 (with venv) and a Rust toolchain; everything else is
# installed into .venv from PyPI.
VENV ?= .venv
# The dependency versions the tests were written against (pip reads this for every install).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
PY := $(VENV)/bin/python
MATURIN := $(VENV)/bin/maturin

.PHONY: demo test build build-release bench lint

$(VENV)/.bootstrapped:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9.4,<2"
	touch $@

# Builds the extension (debug) into the venv, with the test dependencies.
build: $(VENV)/.bootstrapped
	$(MATURIN) develop -q --extras test

build-release: $(VENV)/.bootstrapped
	$(MATURIN) develop -q --release --extras test

# The main job: real LangChain calls on a fake model, tracked, then the report.
demo: build
	$(PY) examples/demo.py

# Every test: Rust core, Python package, type stubs, formatting.
test: build
	cargo fmt --check
	cargo test -q --no-default-features --lib
	$(PY) -m mypy.stubtest llmledger._core
	$(PY) -m pytest -q

bench: build-release
	$(PY) benchmarks/bench_on_llm_end.py
	$(PY) benchmarks/bench_tokens.py
	$(PY) benchmarks/bench_catalog.py
	$(PY) benchmarks/bench_store.py
	$(PY) benchmarks/bench_budgets.py
	$(PY) benchmarks/bench_dashboard.py

# Set-up and checks. Needs python3 (with venv) and a Rust toolchain; everything else is
# installed into .venv from PyPI (and cargo-fuzz from crates.io, for `make fuzz`).
VENV ?= .venv
# The dependency versions the tests were written against (pip reads this for every install).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
PY := $(VENV)/bin/python
MATURIN := $(VENV)/bin/maturin
# PyO3's build script (clippy of the binding layer) finds the interpreter here.
export PYO3_PYTHON := $(CURDIR)/$(PY)

# Fuzzing: seconds per target for `make fuzz` (the CI smoke, `make fuzz-smoke`, runs
# FUZZ_SMOKE_SECONDS each).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15
# `make fuzz` runs under AddressSanitizer; the CI smoke runs without it (`none`): building
# every dependency with ASan is most of a cold fuzz build, and Rust's own checks (bounds,
# overflow with debug assertions, the targets' invariants) still hold.
FUZZ_SANITIZER ?= address
FUZZ_TARGETS := price_file resolve jsonl_ledger usage_cost
CARGO_FUZZ_VERSION := 0.13.2

.PHONY: demo test build build-release bench lint fuzz fuzz-smoke fuzz-build cargo-fuzz \
	dist dist-smoke wheel-smoke soak

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

# clippy on every target, with the binding layer (default `python` feature) and without it;
# ruff (lint and format) on every Python file; mypy (strict, pyproject.toml) on the package.
PY_DIRS := python tests benchmarks scripts examples
lint: build
	cargo clippy -q --all-targets -- -D warnings
	cargo clippy -q --all-targets --no-default-features -- -D warnings
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(PY) -m mypy python/llmledger

bench: build-release
	$(PY) benchmarks/bench_on_llm_end.py
	$(PY) benchmarks/bench_tokens.py
	$(PY) benchmarks/bench_catalog.py
	$(PY) benchmarks/bench_store.py
	$(PY) benchmarks/bench_advise.py
	$(PY) benchmarks/bench_budgets.py
	$(PY) benchmarks/bench_dashboard.py
	$(PY) benchmarks/bench_metrics.py

# The soak (10,000,000 calls, 8 threads, SQLite, three budgets; see benchmarks/soak.py).
soak: build-release
	$(PY) benchmarks/soak.py

# Fuzzing (fuzz/, its own cargo workspace). cargo-fuzz drives libFuzzer through rustc flags
# that are unstable; this machine has only the stable toolchain, so RUSTC_BOOTSTRAP=1 lets
# stable rustc accept them (as a nightly would). Inputs that find a bug land in
# fuzz/artifacts/TARGET/; fuzz/corpus/ (not in git) keeps what the runs learnt.
cargo-fuzz:
	@cargo fuzz --version 2>/dev/null | grep -q " $(CARGO_FUZZ_VERSION)$$" || \
		cargo install -q cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

fuzz-build: cargo-fuzz
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -s $(FUZZ_SANITIZER)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
		mkdir -p fuzz/corpus/$$t; \
		dict=""; [ -f fuzz/dicts/$$t.dict ] && dict="-dict=dicts/$$t.dict"; \
		log=fuzz/corpus/$$t.log; \
		if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s $(FUZZ_SANITIZER) $$t corpus/$$t seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) $$dict) >$$log 2>&1; then \
			grep -v '^#[0-9]' $$log | tail -n 80; echo "fuzz $$t FAILED (log: $$log)"; exit 1; \
		fi; \
		grep -E '^Done [0-9]+ runs' $$log; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) FUZZ_SANITIZER=none

# The abi3 wheel and the sdist, release build, into dist/.
dist: $(VENV)/.bootstrapped
	rm -rf dist
	$(MATURIN) build -q --release --out dist
	$(MATURIN) sdist --out dist

# What `pip install llmledger` gives a user: the wheel in dist/ installed into a fresh
# virtual environment with nothing else (only its declared dependencies), then
# `llmledger --version`, `import llmledger` and one tracked call of a fake chat model.
dist-smoke:
	$(PY) scripts/check_wheel.py dist/*.whl

# The same check on a wheel built with the debug profile (seconds after `make test`, which
# built the same code): what CI runs, instead of the minutes of a fat-LTO release build.
wheel-smoke: $(VENV)/.bootstrapped
	rm -rf target/wheel-smoke
	$(MATURIN) build -q --profile dev --out target/wheel-smoke
	$(PY) scripts/check_wheel.py target/wheel-smoke/*.whl

# The two commands of the README: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rebusyn-installed

.PHONY: install demo test lint bench clean

# The torch extra says torch>=2.1; installed first and pinned, pip takes the CPU wheel that lies on the CI
# machines' disk instead of resolving "torch" to a multi-GB CUDA build. Elsewhere: TORCH="torch --index-url
# https://download.pytorch.org/whl/cpu", or whatever build suits the machine.
TORCH ?= torch==2.13.0

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,torch,ray,plots]"
	# trdg 1.8.0 pins arabic-reshaper==2.1.3, whose metadata pip >= 24.1 rejects (and pip then backtracks
	# to trdg releases that compile numpy 1.16). Its real runtime deps are in pyproject.toml; install it alone.
	$(BIN)/python -m pip install --quiet --no-deps "trdg==1.8.0"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rebusyn demo --root demo-data
	$(BIN)/rebusyn verify demo-data/dataset

test: $(STAMP)
	$(BIN)/ruff check rebusyn tests benchmarks scripts
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check rebusyn tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_mix.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_executors.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_dedup.py
	$(BIN)/python benchmarks/bench_mjsynth.py --clean

clean:
	rm -rf demo-data .pytest_cache .ruff_cache

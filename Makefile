# The two commands a fresh machine needs: `make demo` and `make test`. Both build .venv from
# pyproject.toml; nothing else may be assumed installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/testbeds demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/latentgym_overhead.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/mixopt_cost_to_target.py --seeds 20 --jobs 2
	$(BIN)/python benchmarks/sheets_grading_speed.py --repeats 3
	$(BIN)/python benchmarks/sheets_agreement.py --seeds 2
	$(BIN)/python benchmarks/sheets_scores_by_difficulty.py --seeds 3
	$(BIN)/python benchmarks/synthtools_speed.py
	$(BIN)/python benchmarks/synthtools_audit_accuracy.py --free

clean:
	rm -rf $(VENV) runs.db runs.db-* runs.studies.db* runs.sheets report .pytest_cache

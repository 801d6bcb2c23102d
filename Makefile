PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast bench paper

# torch==2.13.0 first: it is the CPU build on this machine kind's disk; a free choice would pull CUDA.
# PYTHONWARNINGS hides only setuptools' "Editable installation." notice (printed on every editable install).
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e ".[dev,cluster,cameras,speech]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/snn-drtp demo

test: setup
	$(BIN)/ruff check snn_drtp tests benchmarks
	$(BIN)/ruff format --check snn_drtp tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The same checks without the tests marked slow (each over about 2 s).
test-fast: setup
	$(BIN)/ruff check snn_drtp tests benchmarks
	$(BIN)/ruff format --check snn_drtp tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not slow"

# The CPU benchmarks in one table (a few minutes); BASELINE: the revision compared with (before the speed work).
BASELINE ?= b38ed56
bench: setup
	$(BIN)/python benchmarks/bench.py --threads 1 --baseline $(BASELINE)

# The paper's studies (tens of core-hours here): each experiment resumes where it stopped and reads
# its finished runs, so this can be stopped and rerun at any time; then the report is rewritten.
PAPER_STUDIES := paper-table1-mnist-fc paper-fig2-regression paper-fig3-classification paper-table1-mnist-conv spike-vs-rate-study
JOBS ?= 2
paper: setup
	for study in $(PAPER_STUDIES); do $(BIN)/snn-drtp experiment experiments/$$study --jobs $(JOBS) --threads 1 || exit 1; done
	$(BIN)/snn-drtp report $(addprefix experiments/,$(PAPER_STUDIES)) experiments/paper-mnist-fc1-500 --out reports/paper

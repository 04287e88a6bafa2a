# Two commands do everything on a fresh machine with Python 3.11:
#   make run   - set up .venv, generate the demo data, execute the notebooks in order, for the
#                classifier (runs/demo) and the detector (runs/demo-detect)
#   make test  - set up .venv, lint, run the test suite (every notebook on the tiny profile)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= demo
DETECT_PROFILE ?= demo-detect
# make test runs the files in this many pytest-xdist processes, each file whole in one of them
# (its fixtures built once, its tests in order); 0: one process. Not loadgroup: xdist 3.8
# drops the groups under pytest 9 (no Node._nodeid), so files would be split
TEST_WORKERS ?= 2

.PHONY: run test lint format bench lab netron clean-venv

$(STAMP): requirements/*.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -r requirements/brevitas.txt -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements/finn.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	$(BIN)/python -c "import torch, brevitas, qonnx, finn; print('venv ok: torch', torch.__version__)"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/firesmoke run --profile $(PROFILE)
	$(BIN)/firesmoke run --profile $(DETECT_PROFILE)

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_finn.py

lab: $(STAMP)
	$(BIN)/firesmoke lab

netron: $(STAMP)
	@test -n "$(FILE)" || (echo "usage: make netron FILE=path/to/model.onnx" && exit 2)
	$(BIN)/python -m modules.reporting.netron_view $(FILE)

clean-venv:
	rm -rf $(VENV)

# The two commands of the README:
#   make demo   set up (or reuse) .venv, then run the demo study end to end on the synthetic tiny world
#   make test   set up (or reuse) .venv, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test bench clean

setup: $(VENV)/.capgate-installed

$(VENV)/.capgate-installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/capgate demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/grid_efficiency.py
	$(PY) benchmarks/trainer_throughput.py
	$(PY) benchmarks/analysis_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info

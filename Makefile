# The two commands of the README:
#   make demo   set up (or reuse) .venv, then run the demo study end to end on the synthetic tiny world
#   make test   set up (or reuse) .venv, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test demo-check bench wheel clean

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

# CI's regression check: train the demo study afresh into a temporary store and compare it with the
# committed baseline (cells within noise, verdicts and gates unchanged, the plan's expectations hold).
# The demo is one fixed protocol (the adaptive round included); --budget-min 60 only keeps a slow machine
# from stopping it (a demo past its budget stops, resumable, before its next grid or round).
# The temporary store is removed when the check passes and kept (its path printed) when it fails.
demo-check: setup
	d=$$(mktemp -d /tmp/capgate-check.XXXXXX) && \
	if $(VENV)/bin/capgate demo --storage $$d/store -o $$d/report --budget-min 60 && \
	   $(VENV)/bin/capgate check $$d/store/demo/results.parquet $$d/store/demo_classification/results.parquet \
	     --baseline reports/baselines/demo.json --plan analysis/demo.yaml --expectations baseline \
	     --junit $$d/check-junit.xml --only-problems; \
	then rm -rf $$d; \
	else echo "demo-check failed: its store, report and check-junit.xml are kept in $$d" >&2; exit 1; fi

bench: setup
	$(PY) benchmarks/grid_efficiency.py
	$(PY) benchmarks/trainer_throughput.py
	$(PY) benchmarks/channels_last.py
	$(PY) benchmarks/analysis_speed.py

# The wheel (templates/, experiments/ and analysis/ inside it, no setup.py) into dist/.
wheel: setup
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info

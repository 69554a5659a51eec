# One entry point: `make demo` runs the demo, `make test` runs lint + the whole test suite.
# Both create (or reuse) the virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.diagrammar-installed

.PHONY: demo test lint install clean wheel-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,qnlp,ray,kernels]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The tests, then the wheel (shipped weights inside) installed into a fresh venv, running the
# tiny demo from there: what CI runs.
test: lint
	$(PY) -m pytest -q
	$(MAKE) wheel-check

# Build the wheel, install it into a fresh virtual environment (outside the checkout) and run
# the tiny demo from there: the shipped weights must be inside the wheel.
WHEEL_VENV ?= /tmp/diagrammar-wheel-venv
wheel-check: $(STAMP)
	rm -rf dist $(WHEEL_VENV)
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w dist .
	$(PY) -m zipfile -l dist/diagrammar-*.whl | grep -q 'diagrammar/models/default/shipped/tiny/model.safetensors'
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q torch==2.13.0
	$(WHEEL_VENV)/bin/python -m pip install -q dist/diagrammar-*.whl
	cd /tmp && $(WHEEL_VENV)/bin/python -c "import diagrammar, sys; sys.exit('diagrammar imported from the checkout' if '$(CURDIR)' in diagrammar.__file__ else 0)"
	cd /tmp && $(WHEEL_VENV)/bin/python $(CURDIR)/examples/demo.py --tiny --out /tmp/diagrammar-wheel-demo

clean:
	rm -rf $(VENV) build dist *.egg-info

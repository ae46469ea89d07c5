# umm-course: every target sets up .venv itself when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Headless runs (course, notebooks, tests) hide progress bars; make lab keeps them.
QUIET  := UMM_PROGRESS=0

.PHONY: setup course test lint unit nbval course-offset browser notebooks lab data gpu-check clean help

help:
	@echo "make course     set up .venv and run every notebook into build/ (executed + HTML)"
	@echo "make test       set up .venv, lint and type-check, run the unit tests, nbval on every notebook,"
	@echo "                the course again with UMM_SEED_OFFSET=100, and the explorer in a browser"
	@echo "make setup      only create/refresh .venv"
	@echo "make lab        JupyterLab on the course"
	@echo "make notebooks  refresh the committed notebook outputs in place"
	@echo "make data       rebuild the embedded AV-Digits data set (needs espeak-ng)"
	@echo "make gpu-check  on a CUDA machine: tests, notebooks, bench and compare with one report"
	@echo "                (GPU_CHECK_ARGS=--quick: compare measures one seed and extrapolates)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[course,test]'
	@touch $(STAMP)

setup: $(STAMP)

course: setup
	$(QUIET) $(PY) -m umm_helpers course

notebooks: setup
	$(QUIET) $(PY) -m umm_helpers course --inplace

# Lint and type-check the package (and lint the tests) before anything runs.
lint: setup
	$(VENV)/bin/ruff check umm_helpers tests
	$(VENV)/bin/mypy

unit: setup
	$(QUIET) $(PY) -m pytest -q -n 2 --dist loadscope --ignore=tests/browser tests

nbval: setup
	rm -rf build/test-runs
	$(QUIET) UMM_RUNS_DIR=$(CURDIR)/build/test-runs $(PY) -m pytest -q -p no:xdist --nbval-lax \
	  --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

# The whole course again on fresh training randomness (seeds shifted by 100): every notebook must
# run top to bottom whatever the trained numbers; no output is compared (claims are reported with
# their intervals in build/offset-100/claims.jsonl, never asserted).
OFFSET ?= 100
course-offset: setup
	$(QUIET) UMM_SEED_OFFSET=$(OFFSET) UMM_RUNS_DIR=$(CURDIR)/build/test-runs $(PY) -m umm_helpers \
	  course --build build/offset-$(OFFSET)

# The explorer in a real JupyterLab + headless Chromium; reuses the run cache of nbval.
browser: setup
	$(QUIET) UMM_RUNS_DIR=$(CURDIR)/build/test-runs $(PY) -m pytest -q -p no:xdist tests/browser

test: lint unit nbval course-offset browser

lab: setup
	$(PY) -m umm_helpers lab

# On a CUDA machine: unit tests, every notebook and umm bench, with one compact report.
gpu-check: setup
	$(QUIET) $(PY) -m umm_helpers gpu-check $(GPU_CHECK_ARGS)

data: setup
	$(PY) -m umm_helpers data build av-digits

clean:
	rm -rf build runs

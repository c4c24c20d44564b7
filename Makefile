# Two entry points for a fresh machine (see README):
#   make book   set up .venv and build the book (HTML in _build/html) on the embedded synthetic data (PRESET=ci|lab)
#   make test   set up .venv and run the whole test suite (pytest + doctests + nbval on every notebook at the ci preset)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The README's main command builds at the ci preset (minutes on 2 cores; figures are smoke tests).
# `make book PRESET=lab` gives the book's real results (the Pages workflow does this).
PRESET ?= ci
STAMP := $(VENV)/.rawdrift-installed

.PHONY: setup book book-check test test-fast clean-book

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

setup: $(STAMP)

book: $(STAMP)
	RAWDRIFT_PRESET=$(PRESET) $(VENV)/bin/jupyter-book build . --path-output . -W -n --keep-going
	@echo "Book written to _build/html/index.html (preset $(PRESET))"

book-check: $(STAMP)
	$(PY) tools/check_book.py _build/html

test: $(STAMP)
	RAWDRIFT_PRESET=ci $(PY) -m pytest tests --doctest-modules rawdrift --nbval-lax --nbval-current-env notebooks

test-fast: $(STAMP)
	RAWDRIFT_PRESET=ci $(PY) -m pytest tests --doctest-modules rawdrift -m "not slow"

clean-book:
	rm -rf _build

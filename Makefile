# The two commands of the README. Each creates the virtual environment it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run test lint eval bench chromium

## make run: set everything up, build the sample index, start the hub on http://127.0.0.1:8000
run: $(VENV)/.installed
	$(PY) -m core ingest
	$(PY) -m core serve

## make test: set everything up (Chromium included) and run lint and the whole test suite
test: $(VENV)/.installed chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

eval: $(VENV)/.installed
	$(PY) -m core eval --dataset ../shared/datasets/drcd-retrieval --dataset ../shared/datasets/medquad-retrieval

bench: $(VENV)/.installed
	$(PY) bench/retrieval.py

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The portal test drives Debian's Chromium (Playwright's own browser download needs the internet).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium and CJK fonts from Debian packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# The two commands of the README. Each creates the virtual environment it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run test test-fast lint lock eval bench system-deps node-deps image

## make run: set everything up, build the sample index, start the hub on http://127.0.0.1:8000
run: $(VENV)/.installed
	$(PY) -m core ingest
	$(PY) -m core serve

## make test: set everything up (Chromium and promtool included) and run lint and the whole test suite
test: $(VENV)/.installed system-deps node-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

## make test-fast: the inner loop — every test that starts no server, process, Redis or browser (under a minute)
test-fast: $(VENV)/.installed
	ASKHUB_FAST_TESTS=1 $(PY) -m pytest -q -rfE

## the openai npm package for tests/test_openai_responses.py, where Node.js is installed
node-deps:
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; fi

eval: $(VENV)/.installed
	$(PY) -m core eval --dataset data/eval/policies --dataset data/eval/handbook \
	  --dataset ../shared/datasets/drcd-retrieval --dataset ../shared/datasets/medquad-retrieval
	$(PY) -m core eval data/eval/crosslang/questions.jsonl --kb data/kb

bench: $(VENV)/.installed
	$(PY) bench/retrieval.py

## make image: build the container image with podman (from python:3.11-slim, or a Debian-built
## equivalent when no registry answers) and verify it: mounted, its command run in a chroot as
## its user (deploy/verify_image.py). Needs root and Redis; not part of make test (minutes).
IMAGE ?= localhost/askhub:dev
image:
	@command -v podman >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman debootstrap >/dev/null; }
	deploy/build-image.sh $(IMAGE)
	$(PYTHON) deploy/verify_image.py $(IMAGE)

$(VENV)/.installed: requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	touch $@

## make lock: rewrite requirements.lock (runtime) and requirements-dev.lock (runtime + the dev group) from
## pyproject.toml, every package pinned with its hashes, for Python 3.11 on Linux (uv, installed in var/tools).
## Pins already in a lock file are kept unless pyproject.toml needs another version.
UV := var/tools/bin/uv
LOCK_FLAGS := --python-version 3.11.2 --python-platform x86_64-manylinux_2_28 --generate-hashes -q \
  --custom-compile-command "make lock"
lock:
	test -x $(UV) || { $(PYTHON) -m venv var/tools && var/tools/bin/pip install --quiet uv==0.13.10; }
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --group dev $(LOCK_FLAGS) -o requirements-dev.lock

# System packages the tests need, from Debian, installed only when missing:
# - Chromium and CJK fonts: the portal and dashboard tests drive Debian's Chromium
#   (Playwright's own browser download needs the internet);
# - prometheus: ships promtool (checks ops/alerts.yml, ops/prometheus.yml and a live /metrics)
#   and the server the observability test evaluates the rules and the Grafana queries with.
system-deps:
	@chromium=; prometheus=; \
	command -v chromium >/dev/null 2>&1 || chromium=yes; \
	command -v promtool >/dev/null 2>&1 || prometheus=yes; \
	if [ -n "$$chromium$$prometheus" ]; then $(SUDO) apt-get update -qq; fi && \
	if [ -n "$$chromium" ]; then \
	  echo "installing Chromium and CJK fonts from Debian packages"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi && \
	if [ -n "$$prometheus" ]; then \
	  echo "installing Prometheus (promtool) from Debian packages"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi

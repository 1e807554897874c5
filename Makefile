# Two commands for a newcomer: `make demo` and `make test`. Both build the virtualenv
# from the lock file first, so a fresh machine needs only python3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lock clean compose-check soak

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ais demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The crash harness of tests/reliability/ run long, outside CI: 300 SIGKILLs of the live
# loop (about 6 minutes). AIS_SOAK_KILLS=N to change it.
soak: $(STAMP)
	AIS_SOAK_KILLS=$${AIS_SOAK_KILLS:-300} $(BIN)/pytest -s tests/reliability/test_loop_crash.py

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Validate deploy/ and docker-compose.yml with the real tools (Debian: prometheus,
# docker-compose; amtool from prometheus-alertmanager is optional).
compose-check:
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/tests/ais_test.yml
	docker-compose -f docker-compose.yml config -q
	if command -v amtool >/dev/null; then amtool check-config deploy/alertmanager/alertmanager.yml; fi

# Re-resolve the pins after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/ais-lock && $(PYTHON) -m venv /tmp/ais-lock
	/tmp/ais-lock/bin/pip install --quiet "setuptools>=68" wheel -e ".[dev]"
	/tmp/ais-lock/bin/pip freeze --all --exclude-editable | grep -v '^pip==' > requirements.lock

clean:
	rm -rf $(VENV) var

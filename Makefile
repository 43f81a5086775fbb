# cmlims: `make demo` runs the app with demo data; `make test` runs the tests. Both set up .venv first,
# from requirements.lock (exact versions with hashes; `make lock` refreshes it).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= config.settings.local

LOCK_TOOL := $(VENV)/lock-tool
UV_VERSION := 0.13.9

.PHONY: demo test install-browser test-clocks validation seed install lock migrate lint backup restore bench clean soak

# Exactly the locked versions (hash-checked), then cmlims itself without resolving anything again;
# a lock that no longer matches pyproject.toml stops here, naming what to add.
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m cmlims.validation.lock
	touch $(STAMP)

install: $(STAMP)

# The browser tests (tests/browser/) drive Debian's chromium: Playwright's own browser download does not work here.
install-browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Re-resolves requirements.lock from pyproject.toml (base + dev), keeping current pins that still fit;
# `make lock UPGRADE=1` takes the newest versions allowed. uv lives outside the app's environment.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(LOCK_TOOL)/bin/uv || $(BIN)/python -m pip install --quiet --target $(LOCK_TOOL) 'uv==$(UV_VERSION)'
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --quiet \
	  --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade,) -o requirements.lock

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

demo: seed
	$(BIN)/python manage.py demo_users
	$(BIN)/python -m config.demo_runner --host $(HOST) --port $(PORT)

# The JUnit report is written whatever the outcome; pytest's exit 5 (nothing collected) is a failure too.
test: install install-browser
	mkdir -p reports
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python -m pytest --junitxml=reports/junit.xml $(PYTEST_ARGS); \
	code=$$?; [ $$code -ne 5 ] || echo "pytest collected no tests"; exit $$code

# The whole suite three times under a set, running clock (tests/support/clock.py): late evening,
# just after midnight, and a run that crosses midnight into a new year. Every run happens; any failure fails.
TEST_CLOCKS ?= 2026-06-30T23:30:00Z 2026-07-01T00:30:00Z 2026-12-31T23:58:00Z
test-clocks: install
	@failed=""; for clock in $(TEST_CLOCKS); do echo "== CMLIMS_TEST_CLOCK=$$clock"; \
	  CMLIMS_TEST_CLOCK=$$clock DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python -m pytest -p no:cacheprovider \
	  $(PYTEST_ARGS) || failed="$$failed $$clock"; done; \
	[ -z "$$failed" ] || { echo "failed under:$$failed"; exit 1; }

# The validation pack in reports/validation/: traceability matrix (HTML, CSV) and IQ/OQ PDF, from this
# commit's reports/junit.xml; `make test` runs first only when the report is not from this commit.
# Fails while a mandatory requirement has no passing test.
validation: migrate
	@if $(BIN)/python -m cmlims.validation.matrix --fresh reports/junit.xml; then \
	  echo "reports/junit.xml is from this commit: using it"; \
	else $(MAKE) --no-print-directory test || echo "tests failed: the matrix shows which"; fi
	$(BIN)/python manage.py validation_pack --junit reports/junit.xml --out reports/validation \
	  --deploy-settings config.settings.production

# Load run (tests/reliability/soak/run.py): its own Redis, a fresh <db>_soak database on DATABASE_URL's server,
# gunicorn, two workers and locust headless on loopback; summary in reports/soak/; fails when a target or check does.
SOAK_DURATION ?= 60
SOAK_USERS ?= 20
soak: install
	$(BIN)/python -m tests.reliability.soak.run --duration $(SOAK_DURATION) --users $(SOAK_USERS) --out reports/soak

lint: install
	$(BIN)/ruff check .

backup: install
	$(BIN)/python manage.py backup $(if $(TO),--to $(TO),)

restore: install
	@test -n "$(FROM)" || { echo "usage: make restore FROM=backups/<folder>"; exit 1; }
	$(BIN)/python manage.py restore --from $(FROM)

# Builds (or reuses) the dataset on the configured database (PostgreSQL via DATABASE_URL for figures that
# count), runs B1-B5, B8-B10 and writes benchmarks/results.json + results.md. SCALE=small|medium|default, GROWTH=1.
SCALE ?= default
bench: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python -m benchmarks --scale $(SCALE) $(if $(GROWTH),--growth,)

clean:
	rm -rf $(VENV) reports .pytest_cache

# cmlims: `make demo` runs the app with demo data; `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= config.settings.local

.PHONY: demo test test-clocks seed install migrate lint backup restore bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

demo: seed
	$(BIN)/python manage.py demo_users
	$(BIN)/python -m config.demo_runner --host $(HOST) --port $(PORT)

# The JUnit report is written whatever the outcome; pytest's exit 5 (nothing collected) is a failure too.
test: install
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

lint: install
	$(BIN)/ruff check .

backup: install
	$(BIN)/python manage.py backup $(if $(TO),--to $(TO),)

restore: install
	@test -n "$(FROM)" || { echo "usage: make restore FROM=backups/<folder>"; exit 1; }
	$(BIN)/python manage.py restore --from $(FROM)

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) reports .pytest_cache

# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format serve worker bench stress clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Development: DEBUG on (it is off by default) for tracebacks and the demo page.
run: $(STAMP)
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py seed_demo
	DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite on SQLite, then again on PostgreSQL when DATABASE_URL is set.
test: lint
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	env -u DATABASE_URL HYPOTHESIS_PROFILE=ci $(BIN)/pytest
	if [ -n "$$DATABASE_URL" ]; then HYPOTHESIS_PROFILE=ci $(BIN)/pytest; fi

# Production server: gunicorn with two workers. Static files are collected (hashed names,
# compressed) into STATIC_ROOT for WhiteNoise, migrations applied and the coming months'
# event partitions made (PostgreSQL), before it starts.
# The workers share their metrics through PROMETHEUS_MULTIPROC_DIR, emptied at each start.
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.metrics
serve: $(STAMP)
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py event_partitions
	mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)"
	find "$(PROMETHEUS_MULTIPROC_DIR)" -maxdepth 1 -name '*.db' -delete
	PROMETHEUS_MULTIPROC_DIR="$(PROMETHEUS_MULTIPROC_DIR)" $(BIN)/gunicorn refiner.wsgi -w 2 -b 127.0.0.1:8000

# Development's background worker, beside `make run`: it sends the webhooks
# (docs/webhooks.md). The sweep first queues again what a worker killed mid-delivery
# left, then db_worker runs the queue. Production runs deploy/refiner-worker.service.
worker: $(STAMP)
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py webhooks_sweep
	DEBUG=true $(BIN)/python manage.py db_worker

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV)

# Two minutes (STRESS_SECONDS) of mixed widget load on gunicorn + PostgreSQL, in its own
# database refiner_stress; fails on any error or acknowledged write that was lost.
stress: $(STAMP)
	$(BIN)/python bench/stress.py

# Realtime orderbook workbook. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NOTEBOOK_TIMEOUT ?= 180
# Two pytest workers, each with a broker and database of its own: most tests wait on a broker,
# so two halve the wall time on two cores (TEST_WORKERS=0 runs everything in one process).
TEST_WORKERS ?= 2
JUPYTER_PORT ?= 8888
# The API's load test in `make bench`: WebSocket clients, and HTTP requests a second.
API_CLIENTS ?= 50
API_RATE ?= 60
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
# JupyterLab refuses to run as root (containers, WSL) unless told that it is meant.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)

.DEFAULT_GOAL := help
.PHONY: help install lab test unit broker cluster db stop status logs bench lint format lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt pyproject.toml .jupyter/overrides.json
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11 or newer is needed (found: $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11"; exit 1; }
	@if [ -d $(VENV) ] && ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		echo "$(VENV) is incomplete (an earlier first run stopped half-way): recreating it."; \
		rm -rf $(VENV); \
	fi
	@test -d $(VENV) || { echo "Creating $(VENV) ..."; $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "error: could not create $(VENV). On Ubuntu/Debian: sudo apt install python3-venv"; exit 1; }; }
	@echo "Installing the pinned Python packages into $(VENV). The first run downloads about 150 MB"
	@echo "and takes 1-3 minutes; later runs skip this step until requirements.txt changes."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.txt
	@# JupyterLab reads these settings for this environment only (no news pop-up).
	@mkdir -p $(LAB_SETTINGS) && cp .jupyter/overrides.json $(LAB_SETTINGS)/overrides.json
	@touch $@

install: $(INSTALLED) ## create .venv and install the pinned requirements

lab: $(INSTALLED) ## use (or start) Kafka and PostgreSQL, then open JupyterLab on notebooks/ (Ctrl-C stops it)
	$(BIN)/python -m orderbook_kit.lab.broker ensure
	$(BIN)/python -m orderbook_kit.lab.postgres ensure
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(JUPYTER_PORT) --ServerApp.root_dir=notebooks $(LAB_FLAGS)

test: $(INSTALLED) ## unit + integration tests and every notebook, against a throwaway broker and database
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=10 --nbmake --nbmake-timeout=$(NOTEBOOK_TIMEOUT) \
		tests notebooks

unit: $(INSTALLED) ## only the unit tests (no Java, no Maven, no broker)
	$(BIN)/python -m pytest tests/unit

broker: $(INSTALLED) ## start the JVM broker at KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092)
	$(BIN)/python -m orderbook_kit.lab.broker start

cluster: $(INSTALLED) ## start the three-node cluster at KAFKA_CLUSTER_SERVERS (default 127.0.0.1:9192-9194)
	$(BIN)/python -m orderbook_kit.lab.broker start --nodes 3

db: $(INSTALLED) ## start the kit's PostgreSQL at DATABASE_URL (default 127.0.0.1:5433)
	$(BIN)/python -m orderbook_kit.lab.postgres start

stop: $(INSTALLED) ## stop the JVM broker, the cluster, the kit's PostgreSQL and S3 server (data is kept)
	$(BIN)/python -m orderbook_kit.lab.broker stop
	$(BIN)/python -m orderbook_kit.lab.postgres stop
	$(BIN)/python -m orderbook_kit.lab.s3 stop

status: $(INSTALLED) ## are the JVM broker, the kit's PostgreSQL and S3 server running?
	@$(BIN)/python -m orderbook_kit.lab.broker status || true
	@$(BIN)/python -m orderbook_kit.lab.postgres status || true
	@$(BIN)/python -m orderbook_kit.lab.s3 status || true

logs: $(INSTALLED) ## the end of the JVM broker's and PostgreSQL's logs
	$(BIN)/python -m orderbook_kit.lab.broker logs
	$(BIN)/python -m orderbook_kit.lab.postgres logs

bench: $(INSTALLED) ## the kit against bare kafka-python (throughput, latency, memory); the API under load
	$(BIN)/python -m orderbook_kit.lab.broker ensure
	$(BIN)/python -m orderbook_kit.lab.postgres ensure
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/api_load.py --clients $(API_CLIENTS) --rate $(API_RATE) --seconds 30

lint: $(INSTALLED) ## ruff, the type checker, and declared against imported dependencies
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/deptry .

format: $(INSTALLED) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(INSTALLED) ## re-pin requirements.txt (every package, every platform) from requirements.in
	$(BIN)/python -m pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip compile --universal --python-version 3.11 --custom-compile-command "make lock" \
		--quiet requirements.in -o requirements.txt

clean: stop ## stop them and delete .venv, .kafka (jars, broker data), .postgres, .s3 and .archive
	rm -rf $(VENV) .kafka .postgres .s3 .archive .archive-docs

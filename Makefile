# Realtime orderbook workbook. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NOTEBOOK_TIMEOUT ?= 180

.DEFAULT_GOAL := help
.PHONY: help install lab test unit broker stop status logs bench lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version 2>&1)); set PYTHON=python3.11"; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

install: $(INSTALLED) ## create .venv and install the pinned requirements

lab: $(INSTALLED) ## use (or start) a Kafka broker, then open JupyterLab on notebooks/
	$(BIN)/python -m orderbook_kit.broker ensure
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks

test: $(INSTALLED) ## unit + integration tests and every notebook, against a throwaway broker
	$(BIN)/python -m pytest --nbmake --nbmake-timeout=$(NOTEBOOK_TIMEOUT) tests notebooks

unit: $(INSTALLED) ## only the unit tests (no Java, no broker)
	$(BIN)/python -m pytest tests/unit

broker: $(INSTALLED) ## start the JVM broker at KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092)
	$(BIN)/python -m orderbook_kit.broker start

stop: $(INSTALLED) ## stop the JVM broker (its data is kept)
	$(BIN)/python -m orderbook_kit.broker stop

status: $(INSTALLED) ## is the JVM broker running?
	$(BIN)/python -m orderbook_kit.broker status

logs: $(INSTALLED) ## the end of the JVM broker's log
	$(BIN)/python -m orderbook_kit.broker logs

bench: $(INSTALLED) ## throughput figures (Kafka ones need a broker: make broker)
	$(BIN)/python benchmarks/throughput.py

lint: $(INSTALLED) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: stop ## stop the broker and delete .venv and .kafka (jars and the broker's data)
	rm -rf $(VENV) .kafka

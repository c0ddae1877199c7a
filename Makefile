# Two entry points: `make report` (the main job, offline on the bundled sample) and `make test`.
# Each creates .venv if missing and installs the project into it first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: install report test check-sync lint export clean-nbs outputs

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The research report of the bundled S&P 500 sample with the default config (offline): reports/^GSPC.html and reports/index.html.
report: $(STAMP)
	@t0=$$(date +%s); $(BIN)/lstm-forecast report '^GSPC' --out reports \
	  && echo "make report: done in $$(( $$(date +%s) - t0 )) s; open $(CURDIR)/reports/^GSPC.html or $(CURDIR)/reports/index.html"

# The report template ships in the package (package data): a copy of the cleaned nbs/backtest.ipynb.
COPY_TEMPLATE = mkdir -p lstm_forecast/templates && cp nbs/backtest.ipynb lstm_forecast/templates/backtest.ipynb

# Fails when nbdev_export, nbdev_clean or the template copy would change a committed module, notebook or template.
check-sync: $(STAMP)
	@rm -rf .sync && mkdir -p .sync && cp -r settings.ini nbs lstm_forecast .sync/
	@cd .sync && ../$(BIN)/nbdev_export && ../$(BIN)/nbdev_clean && $(COPY_TEMPLATE)
	@diff -r -x __pycache__ lstm_forecast .sync/lstm_forecast && diff -r -x .ipynb_checkpoints nbs .sync/nbs \
	  || { echo "notebooks and lstm_forecast/ are out of sync or not clean: run 'make export' and commit"; exit 1; }
	@rm -rf .sync && echo "notebooks and modules in sync"

# Ruff over the package, the tests, the benchmarks and the tools; the rules are in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check lstm_forecast tests bench tools

test: check-sync lint
	$(BIN)/nbdev_test --n_workers 2 --skip_file_re '^(_|backtest|dashboard)'  # the report template and the Voila app run in their own tests
	$(BIN)/python -m pytest -q tests

# What to run before every commit.
export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(COPY_TEMPLATE)

# Runs the numbered notebooks (or just some: make outputs NBS=nbs/07_metrics.ipynb), each in a fresh kernel, and writes them
# back with the outputs of their cheap example cells (under 5 s, under 100 kB, not exported) and cleaned by nbdev_clean;
# tools/run_examples.py says what it keeps and prints, per notebook, what it dropped. Commit the notebooks it changes.
NBS ?= $(wildcard nbs/[0-9]*.ipynb)
outputs: $(STAMP)
	$(BIN)/python tools/run_examples.py $(NBS)

# The Voila forecast dashboard on http://127.0.0.1:8866 (this machine only): just nbs/dashboard.ipynb, no file tree,
# code stripped, kernels of closed pages culled after 2 idle minutes; the only files it serves are the HTML reports, reports/*.html, and the
# plotly.js the reports of a universe share, reports/plotly.min.js.
# The template share/jupyter/voila/templates/lstm-forecast is Voila's lab template without its two Font Awesome stylesheets from
# cdn.jsdelivr.net: the page requests nothing beyond its own origin (its icons come from Voila's own bundle).
# A fast model for a try-out: LSTM_FORECAST_OVERRIDES='{"model.epochs": 2}' make dashboard
.PHONY: dashboard
dashboard: $(STAMP)
	env JUPYTER_PATH=$(CURDIR)/share/jupyter $(BIN)/voila nbs/dashboard.ipynb --template=lstm-forecast --no-browser --port=8866 \
	  --Voila.ip=127.0.0.1 --Voila.root_dir=. \
	  --VoilaConfiguration.file_allowlist='reports/([^/]+\.html|plotly\.min\.js)' --strip_sources=True \
	  --MappingKernelManager.cull_idle_timeout=120 --MappingKernelManager.cull_interval=30

# The MLflow UI on http://127.0.0.1:$(MLFLOW_PORT) (default 5001; `make mlflow MLFLOW_PORT=5002`; this machine only) over the local store that `lstm-forecast report --track`
# writes: mlruns.db and mlartifacts/ in LSTM_FORECAST_MLFLOW_DIR (default: this folder).
.PHONY: mlflow
MLFLOW_DIR ?= $(or $(LSTM_FORECAST_MLFLOW_DIR),$(CURDIR))
MLFLOW_PORT ?= 5001
mlflow: $(STAMP)
	mkdir -p $(MLFLOW_DIR)/mlartifacts
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
	  --backend-store-uri sqlite:///$(abspath $(MLFLOW_DIR))/mlruns.db --default-artifact-root $(abspath $(MLFLOW_DIR))/mlartifacts

# The container test (.ci/run runs it after `make test`): builds the image (and a debootstrap base image, a docker daemon
# if there is none), runs a 1-epoch report job and the compose stack, checks them, and leaves nothing behind. As root.
.PHONY: docker-test
docker-test:
	tests/docker/run.sh

# One image for the dashboard, the REST API, MLflow and one-off report jobs (docker/entrypoint.sh picks one).
#   docker build -t lstm-forecast .                                   # on python:3.11-slim
#   docker build --build-arg BASE=lstm-forecast-base:bookworm ...     # on any Debian/Ubuntu image, with or without python3
# Optional inputs are folders of the build context that may stay empty (the classic builder has no build secrets):
#   docker/wheels/                 local wheels, e.g. torch's CPU build (pip --find-links); otherwise PyPI's torch
#   docker/certs/ca-bundle.crt     the CA bundle pip must trust to reach PyPI (PIP_CERT); build stage only
# Reports, the price/model cache and the MLflow store are volumes under /data, never part of the image.
ARG BASE=python:3.11-slim

# python3 with venv: kept when the base has it (python:3.11-slim), else Debian's (a debootstrap base has none).
FROM ${BASE} AS base-python
RUN if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -c "import sys; assert sys.version_info >= (3, 11), 'lstm_forecast needs Python 3.11 or newer: use another BASE'"

# The virtual env, built apart so that the wheels, the CA bundle and pip's build files stay out of the image.
FROM base-python AS build
# MLflow for the `mlflow` service, until the project pins it (issue 13): each word replaces the settings.ini pin of the
# same name or is added. mlflow 3.17.2 needs pyarrow<26, so pyarrow goes down to 25.0.1. Empty: the project pins as they are.
ARG EXTRA_REQUIREMENTS="mlflow==3.17.2 pyarrow==25.0.1"
# Without local wheels: e.g. https://download.pytorch.org/whl/cpu for torch's CPU build instead of PyPI's CUDA one.
ARG TORCH_INDEX=""
COPY docker/wheels/ /tmp/wheels/
COPY docker/certs/ /tmp/certs/
COPY docker/requirements.py settings.ini /tmp/
# The pinned dependencies first (this layer is rebuilt only when settings.ini, the wheels or the arguments change),
# then the package tests and torch's C++ test programs and headers are removed: nothing imports them at run time.
RUN set -eu; \
    if [ -s /tmp/certs/ca-bundle.crt ]; then export PIP_CERT=/tmp/certs/ca-bundle.crt; fi; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1; \
    python3 -m venv /opt/venv; \
    python3 /tmp/requirements.py /tmp/settings.ini $EXTRA_REQUIREMENTS > /tmp/requirements.txt; \
    /opt/venv/bin/pip install --find-links /tmp/wheels ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r /tmp/requirements.txt; \
    site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
    find "$site" -depth -type d -name tests -exec rm -rf {} +; \
    rm -rf "$site/torch/test" "$site/torch/include"
# The package itself, not editable, without touching the dependencies above.
COPY setup.py pyproject.toml settings.ini README.md MANIFEST.in* /src/
COPY lstm_forecast/ /src/lstm_forecast/
RUN set -eu; \
    if [ -s /tmp/certs/ca-bundle.crt ]; then export PIP_CERT=/tmp/certs/ca-bundle.crt; fi; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1; \
    /opt/venv/bin/pip install --no-deps /src; \
    /opt/venv/bin/pip check || echo "pip check: a conflict above comes from EXTRA_REQUIREMENTS=$EXTRA_REQUIREMENTS"; \
    /opt/venv/bin/lstm-forecast --help > /dev/null

FROM base-python
RUN useradd --create-home --uid 10001 --user-group lstm \
 && mkdir -p /data/reports /data/cache /data/mlflow \
 && chown lstm:lstm /data/reports /data/cache /data/mlflow
COPY --from=build /opt/venv /opt/venv
# /data is the container's project directory: the notebooks the dashboard and the report job run (read-only) and the
# volumes. settings.ini marks it as a checkout, so the dashboard serves the HTML reports under it (/data/reports).
# TEMPORARY (until the report template nbs/backtest.ipynb is package data): report.template_path() finds the template
# through this settings.ini and nbs/backtest.ipynb in the working directory /data. Then drop nbs/backtest.ipynb here.
COPY settings.ini /data/
COPY nbs/dashboard.ipynb nbs/backtest.ipynb /data/nbs/
COPY docker/entrypoint.sh /usr/local/bin/lstm-forecast-entrypoint
# TINI_KILL_PROCESS_GROUP: under --init (compose `init: true`) a stop signal reaches the server's helper processes too.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TINI_KILL_PROCESS_GROUP=1 \
    HOST=127.0.0.1 \
    LSTM_FORECAST_REPORTS=/data/reports \
    LSTM_FORECAST_CACHE=/data/cache \
    MLFLOW_DIR=/data/mlflow
USER lstm
WORKDIR /data
VOLUME ["/data/reports", "/data/cache", "/data/mlflow"]
EXPOSE 8866 5000 5001
# The server's own URL (written by the entrypoint), or HEALTHCHECK_URL; a one-off job has nothing to check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["python", "-c", "import os, pathlib, urllib.request as u; f = pathlib.Path('/tmp/healthcheck.url'); url = os.environ.get('HEALTHCHECK_URL') or (f.read_text().strip() if f.exists() else ''); url and u.urlopen(url, timeout=8)"]
ENTRYPOINT ["lstm-forecast-entrypoint"]
CMD ["dashboard"]

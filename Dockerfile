# One image for the dashboard, the REST API, MLflow and one-off report jobs (docker/entrypoint.sh picks one).
#   docker build -t lstm-forecast .                                   # on python:3.11-slim, everything from PyPI
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu ...   # torch's CPU build, not PyPI's CUDA one
#   docker build --build-arg BASE=lstm-forecast-base:bookworm ...     # on any Debian/Ubuntu image, with or without python3
# Optional: WHEELS_URL, a folder of wheels served on the build's network (`docker build --network host`), e.g.
# `python3 -m http.server -d WHEELS -b 127.0.0.1 8000` and WHEELS_URL=http://127.0.0.1:8000/ (tests/docker/run.sh does
# this). When it holds every pinned requirement the build installs offline; else it adds to PyPI (pip --find-links).
# A `ca-bundle.crt` in that folder is the CA bundle pip trusts to reach PyPI (PIP_CERT). Served, not copied: the classic
# builder has no build secrets or mounts, and a copied file stays in a layer of the image.
# Reports, the price/model cache and the MLflow store are volumes under /data, never part of the image.
ARG BASE=python:3.11-slim
FROM ${BASE} AS python

# python3 with venv: kept when the base has it (python:3.11-slim), else Debian's (a debootstrap base has none).
# `--target python` builds only this: tests/docker/run.sh asks it which Python the image has, to collect its wheels.
RUN if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -c "import sys; assert sys.version_info >= (3, 11), 'lstm_forecast needs Python 3.11 or newer: use another BASE'"

FROM python
LABEL org.opencontainers.image.title=lstm_forecast
ARG WHEELS_URL=""
ARG TORCH_INDEX=""
# The pinned dependencies of settings.ini first (this layer is rebuilt only when settings.ini or the arguments change):
# offline from WHEELS_URL when it holds them all, else from PyPI too. Then the package tests and torch's C++ test
# programs and headers go: nothing imports them at run time.
COPY docker/requirements.py settings.ini /tmp/build/
RUN set -eu; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1; \
    python3 -m venv /opt/venv; \
    python3 /tmp/build/requirements.py /tmp/build/settings.ini > /tmp/build/requirements.txt; \
    pip=/opt/venv/bin/pip; \
    if [ -n "$WHEELS_URL" ] && $pip install --no-index --find-links "$WHEELS_URL" -r /tmp/build/requirements.txt; then \
      echo "installed offline from $WHEELS_URL"; \
    else \
      [ -z "$WHEELS_URL" ] || echo "$WHEELS_URL lacks some requirements: the rest comes from PyPI"; \
      if [ -n "$WHEELS_URL" ] && python3 -c "import sys, urllib.request as u; open('/tmp/build/ca.crt', 'wb').write(u.urlopen(sys.argv[1].rstrip('/') + '/ca-bundle.crt', timeout=30).read())" "$WHEELS_URL" 2>/dev/null; \
        then export PIP_CERT=/tmp/build/ca.crt; fi; \
      $pip install ${WHEELS_URL:+--find-links "$WHEELS_URL"} ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r /tmp/build/requirements.txt; \
    fi; \
    site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
    find "$site" -depth -type d -name tests -exec rm -rf {} +; \
    rm -rf "$site/torch/test" "$site/torch/include" /tmp/build

# The package itself, not editable, without touching the dependencies above: built with the venv's setuptools (a
# dependency of the pins), so offline; then every installed requirement must be satisfied.
COPY setup.py pyproject.toml settings.ini README.md MANIFEST.in /tmp/src/
COPY lstm_forecast/ /tmp/src/lstm_forecast/
RUN set -eu; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1; \
    isolation=--no-build-isolation; /opt/venv/bin/python -c "import setuptools" 2>/dev/null || isolation=; \
    /opt/venv/bin/pip install --no-deps $isolation /tmp/src; \
    rm -rf /tmp/src; \
    /opt/venv/bin/pip check; \
    /opt/venv/bin/lstm-forecast --version

RUN useradd --create-home --uid 10001 --user-group lstm \
 && mkdir -p /data/reports /data/cache /data/mlflow \
 && chown lstm:lstm /data/reports /data/cache /data/mlflow
# /data is the container's project directory: the dashboard notebook (read-only) and the volumes. settings.ini marks
# it as a checkout, so the dashboard links the HTML reports under it (/data/reports) and Voila serves them.
COPY settings.ini /data/
COPY nbs/dashboard.ipynb /data/nbs/
COPY share/jupyter/voila/templates/lstm-forecast/ /data/share/jupyter/voila/templates/lstm-forecast/
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

#!/bin/sh
# The image's entrypoint: one command a container.
#   dashboard [VOILA ARGS]      the Voila dashboard on $HOST:$PORT (default 127.0.0.1:8866)
#   api [SERVE ARGS]            the REST API, `lstm-forecast serve`, on $HOST:$PORT (default 127.0.0.1:5000)
#   mlflow [SERVER ARGS]        an MLflow tracking server on $HOST:$PORT (default 127.0.0.1:5001), its store in /data/mlflow
#   report TICKER... [ARGS]     `lstm-forecast report ...` as a one-off job, into $LSTM_FORECAST_REPORTS (/data/reports)
#   anything else               run as it is, e.g. `lstm-forecast summary ^GSPC` or `bash`
# The servers write the URL the image's HEALTHCHECK asks to /tmp/healthcheck.url; other commands have no healthcheck.
set -eu

HOST=${HOST:-127.0.0.1}
REPORTS=${LSTM_FORECAST_REPORTS:-/data/reports}
MLFLOW_DIR=${MLFLOW_DIR:-/data/mlflow}

health() {  # health PORT PATH: where the healthcheck looks (the bind address, or loopback for a wildcard one)
    case "$HOST" in 0.0.0.0|'') h=127.0.0.1 ;; ::|'[::]') h='[::1]' ;; *:*) h="[$HOST]" ;; *) h=$HOST ;; esac
    echo "http://$h:$1$2" > /tmp/healthcheck.url
}

cmd=${1:-dashboard}
[ "$#" -gt 0 ] && shift
case "$cmd" in
  dashboard)
    PORT=${PORT:-8866}; health "$PORT" /voila/static/voila.js  # a static file: answers without starting a kernel
    # As `make dashboard`: this notebook only, code stripped, idle kernels culled, and no files served but the HTML reports;
    # the lstm-forecast template: no request beyond the page's own origin (no Font Awesome from cdn.jsdelivr.net).
    exec env JUPYTER_PATH=/data/share/jupyter voila /data/nbs/dashboard.ipynb --template=lstm-forecast --no-browser --port="$PORT" --Voila.ip="$HOST" --Voila.root_dir=/data \
      --VoilaConfiguration.file_allowlist='reports/([^/]+\.html|plotly\.min\.js)' --strip_sources=True \
      --MappingKernelManager.cull_idle_timeout=120 --MappingKernelManager.cull_interval=30 "$@" ;;
  api)
    PORT=${PORT:-5000}; health "$PORT" /health
    exec lstm-forecast serve --host "$HOST" --port "$PORT" "$@" ;;
  mlflow)
    PORT=${PORT:-5001}; health "$PORT" /health
    mkdir -p "$MLFLOW_DIR/artifacts"
    # MLflow's job runner (eight huey worker processes, for its GenAI jobs) is not needed to track experiments.
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}
    # Artifacts are proxied by the server (mlflow-artifacts:/), so a client anywhere stores them in $MLFLOW_DIR/artifacts.
    exec mlflow server --backend-store-uri "sqlite:///$MLFLOW_DIR/mlflow.db" --artifacts-destination "$MLFLOW_DIR/artifacts" \
      --host "$HOST" --port "$PORT" --workers "${MLFLOW_WORKERS:-1}" "$@" ;;
  report)
    exec lstm-forecast report --out "$REPORTS" "$@" ;;  # an --out of the caller's comes later, so it wins
  *)
    exec "$cmd" "$@" ;;
esac

#!/usr/bin/env bash
# The container test (issue 15): the image is built and the compose stack is run here, then taken down without a trace.
#   1. a docker daemon (installs docker.io, debootstrap and docker-compose and starts dockerd when there is none);
#   2. the base image, from debootstrap, when missing (no image can be pulled here);
#   3. the wheels of the pinned requirements, collected on the host for the image's Python (pip download: the host's
#      pip cache, its local wheels such as torch's CPU build, its CA bundle) and served on loopback to the build, which
#      then installs offline; without a local torch wheel, torch comes from $TORCH_INDEX (PyTorch's CPU index);
#   4. the project image;
#   5. a 1-epoch report job of the bundled ^GSPC sample into the reports volume, tracked by the mlflow service;
#   6. the stack: the dashboard page and the job's report through it, the API (health, reports, a 5-day forecast with
#      the report's band), MLflow (the job's run), the image's healthchecks;
#   7. `docker-compose down -v`, then no container, volume or network of the test's project may be left.
# Prints the image size and the times. Runs as root (or with sudo); usage: tests/docker/run.sh (or make docker-test).
# Environment: BASE_IMAGE (lstm-forecast-base:bookworm), IMAGE (lstm-forecast:test), KEEP_DOCKERD=1 leaves a dockerd
# this script started running, TORCH_INDEX (https://download.pytorch.org/whl/cpu; empty: PyPI's torch, a CUDA build)
# where the host has no local torch wheel.
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE_IMAGE=${BASE_IMAGE:-lstm-forecast-base:bookworm}
IMAGE=${IMAGE:-lstm-forecast:test}
SUITE=bookworm
ART=tests/artifacts/docker
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0  # the classic builder: BuildKit/buildx is not in Debian here
export COMPOSE_PROJECT_NAME=lstm_forecast_test LSTM_FORECAST_IMAGE=$IMAGE  # apart from a user's own stack and volumes
mkdir -p "$ART"
T0=$(date +%s%3N)

ms() { date +%s%3N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", (b - a) / 1000 }'; }
TIMES=()
timed() { TIMES+=("$(printf '%-34s %s' "$1" "$(secs "$2" "$(ms)")")"); echo "docker-test: $1: $(secs "$2" "$(ms)")"; }
say() { echo "docker-test: $*"; }
fail() { echo "docker-test: FAILED: $*" >&2; exit 1; }

# One HTTP GET from the host: prints the status (0 when nothing answers) and writes the body to $2.
http_get() {
  python3 - "$1" "$2" "${3:-10}" <<'EOF'
import sys, urllib.error, urllib.request
url, out, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    with urllib.request.urlopen(url, timeout=timeout) as r: code, body = r.status, r.read()
except urllib.error.HTTPError as e: code, body = e.code, e.read()
except OSError: code, body = 0, b""
open(out, "wb").write(body)
print(code)
EOF
}

# Waits until GET $1 answers $2 (a status), at most $3 seconds.
wait_for() {
  local url=$1 want=$2 until=$(( $(date +%s) + $3 ))
  while [ "$(http_get "$url" /dev/null 5)" != "$want" ]; do
    [ "$(date +%s)" -lt "$until" ] || return 1
    sleep 1
  done
}

# N free loopback ports, all different.
free_ports() {
  python3 -c 'import socket, sys; ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))' "$1"
}

# --- cleanup: the stack, the wheel server and folder, and a dockerd this script started ------------------------------
STACK=0 DOCKERD_PID= SERVER_PID= WHEELS=$ART/wheels
stop_server() {
  [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2> /dev/null || true; wait "$SERVER_PID" 2> /dev/null || true; }
  SERVER_PID=
  rm -rf "$WHEELS"
}
cleanup() {
  local rc=$?
  if [ "$STACK" = 1 ]; then
    [ "$rc" -eq 0 ] || docker-compose logs --no-color > "$ART/compose.log" 2>&1 || true
    docker-compose down -v --remove-orphans > /dev/null 2>&1 || true
  fi
  stop_server
  if [ -n "$DOCKERD_PID" ] && [ "${KEEP_DOCKERD:-0}" != 1 ]; then
    $SUDO kill "$DOCKERD_PID" 2> /dev/null || true
    for _ in $(seq 30); do $SUDO kill -0 "$DOCKERD_PID" 2> /dev/null || break; sleep 1; done
  fi
  [ "$rc" -eq 0 ] || echo "docker-test: failed (exit $rc); logs in $ART/" >&2
}
trap cleanup EXIT

# --- 1. the daemon ---------------------------------------------------------------------------------------------
t=$(ms)
missing=()
command -v dockerd > /dev/null || missing+=(docker.io)
command -v debootstrap > /dev/null || missing+=(debootstrap)
command -v docker-compose > /dev/null || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get update -q > "$ART/apt.log" 2>&1
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >> "$ART/apt.log" 2>&1
  timed "install ${missing[*]}" "$t"; t=$(ms)
fi
if ! docker info > /dev/null 2>&1; then
  # No default bridge (it would sit on 172.17/16, where no traffic may go) and no iptables: builds and containers use
  # the host's network and servers bind 127.0.0.1.
  $SUDO dockerd --bridge=none --iptables=false > "$ART/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info > /dev/null 2>&1 && break; sleep 0.5; done
  docker info > /dev/null 2>&1 || fail "dockerd did not start: $(tail -5 "$ART/dockerd.log")"
  timed "start dockerd" "$t"
fi

# --- 2. the base image -----------------------------------------------------------------------------------------
if ! docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
  t=$(ms)
  sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2> /dev/null || true)
  uris=$(grep -E '^(deb|URIs:)' <<< "$sources" | grep -oE 'https?://[^ ]+' || true)
  mirror=$(grep -E '/debian/?$' <<< "$uris" | head -1 || true); mirror=${mirror:-http://deb.debian.org/debian}
  security=$(grep -E '/debian-security/?$' <<< "$uris" | head -1 || true)
  root=$(mktemp -d /var/tmp/lstm-forecast-base.XXXXXX)
  say "debootstrap --variant=minbase $SUITE from $mirror"
  $SUDO debootstrap --variant=minbase "$SUITE" "$root" "$mirror" > "$ART/debootstrap.log" 2>&1 \
    || fail "debootstrap failed: $(tail -3 "$ART/debootstrap.log")"
  { echo "deb $mirror $SUITE main"; echo "deb $mirror $SUITE-updates main"
    [ -z "$security" ] || echo "deb $security $SUITE-security main"; } | $SUDO tee "$root/etc/apt/sources.list" > /dev/null
  $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*  # apt-get update comes first in a build
  $SUDO tar -C "$root" -c . | docker import - "$BASE_IMAGE" > /dev/null
  $SUDO rm -rf "$root"
  timed "base image (debootstrap + import)" "$t"
fi

# --- 3. the wheels, for the image's Python, served on loopback -------------------------------------------------
# The build's first stage alone (python3; cached for the full build) says which Python the image has. pip on the host
# (the project's .venv when there is one: its cache is warm after `make install`) downloads the wheel of every pinned
# requirement and dependency for that Python; torch from the host's local wheels (pip's find-links) when they hold it.
# A loopback HTTP server hands them to the build (the classic builder has no mounts; a copy would stay in a layer).
t=$(ms)
docker build --network host --build-arg BASE="$BASE_IMAGE" --target python --iidfile "$ART/python.iid" . \
  > "$ART/build-python.log" 2>&1 || fail "docker build --target python failed: $(tail -20 "$ART/build-python.log")"
pyver=$(docker run --rm --network none --entrypoint python3 "$(cat "$ART/python.iid")" -c 'import platform; print(platform.python_version())')
if [ -x .venv/bin/python ]; then PIP=(.venv/bin/python -m pip); else PIP=(python3 -m pip); fi
pipcfg=$("${PIP[@]}" config list 2> /dev/null || true)
cert=$(sed -nE "s/^[^=]*\.cert='(.*)'$/\1/p" <<< "$pipcfg" | head -1)
rm -rf "$WHEELS"; mkdir -p "$WHEELS"
python3 docker/requirements.py settings.ini > "$ART/requirements.txt"
get=("${PIP[@]}" download --disable-pip-version-check --only-binary=:all: --python-version "$pyver" -d "$WHEELS")
torch=$(grep -E '^torch([^A-Za-z0-9_.-]|$)' "$ART/requirements.txt" || true)
if [ -n "$torch" ] && "${get[@]}" --no-deps --no-index "$torch" > "$ART/wheels.log" 2>&1; then
  torch_from="a local wheel, $(cd "$WHEELS" && ls torch-*.whl)"
else  # no local torch wheel: the build takes torch from TORCH_INDEX (PyTorch's CPU build), or PyPI's when it is empty
  python3 docker/requirements.py settings.ini --without torch > "$ART/requirements.txt"
  TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}
  torch_from="${TORCH_INDEX:-PyPI (a CUDA build)}, in the build"
fi
"${get[@]}" -r "$ART/requirements.txt" >> "$ART/wheels.log" 2>&1 \
  || say "warning: pip download failed (see $ART/wheels.log): the build fetches what is missing from PyPI"
[ -z "$cert" ] || [ ! -f "$cert" ] || cp "$cert" "$WHEELS/ca-bundle.crt"  # for pip in the build, should it need PyPI
# One port for every run where it is free: the URL is a build argument, and a new one would rebuild the layers after it.
WHEELS_PORT=$(python3 -c 'import socket
for port in [18549, 0]:
    try: s = socket.socket(); s.bind(("127.0.0.1", port)); print(s.getsockname()[1]); break
    except OSError: pass')
python3 -m http.server --bind 127.0.0.1 --directory "$WHEELS" "$WHEELS_PORT" > "$ART/wheels-http.log" 2>&1 &
SERVER_PID=$!
wait_for "http://127.0.0.1:$WHEELS_PORT/" 200 30 || fail "the wheel server did not start: $(tail -3 "$ART/wheels-http.log")"
timed "collect wheels ($(ls "$WHEELS" | grep -c '\.whl$'), $(du -sm "$WHEELS" | cut -f1) MB)" "$t"

# --- 4. the project image --------------------------------------------------------------------------------------
t=$(ms)
say "building $IMAGE on $BASE_IMAGE, Python $pyver (torch from $torch_from); log in $ART/build.log"
docker build --network host --build-arg BASE="$BASE_IMAGE" --build-arg WHEELS_URL="http://127.0.0.1:$WHEELS_PORT/" \
  ${TORCH_INDEX:+--build-arg TORCH_INDEX="$TORCH_INDEX"} -t "$IMAGE" . > "$ART/build.log" 2>&1 \
  || fail "docker build failed: $(tail -20 "$ART/build.log")"
stop_server
if grep -q '^[^ ]* lacks some requirements: ' "$ART/build.log"; then how="partly from PyPI"
elif grep -q '^installed offline from' "$ART/build.log"; then how=offline; else how="dependencies cached"; fi
docker image prune -f --filter label=org.opencontainers.image.title=lstm_forecast > /dev/null  # earlier builds' leftovers
timed "build image ($how)" "$t"

# --- 5. a report job into the reports volume, tracked by the mlflow service -----------------------------------
# A tiny model, so that the API's forecast trains in seconds; the job runs the same one on the prices the API loads (the
# whole sample, its folds a year apart: neither is part of the model), so the forecast is the job's, band and all.
OVERRIDES=(model.epochs=1 model.hidden=8)
FOLDS=(walk_forward.test=252 walk_forward.step=252)
LSTM_FORECAST_OVERRIDES=$(python3 -c 'import json, sys; print(json.dumps({k: int(v) for k, v in (a.split("=") for a in sys.argv[1:])}))' "${OVERRIDES[@]}")
read -r DASHBOARD_PORT API_PORT MLFLOW_PORT <<< "$(free_ports 3)"
export DASHBOARD_PORT API_PORT MLFLOW_PORT LSTM_FORECAST_OVERRIDES
say "ports: dashboard $DASHBOARD_PORT, api $API_PORT, mlflow $MLFLOW_PORT (127.0.0.1); overrides $LSTM_FORECAST_OVERRIDES"
STACK=1
t=$(ms)
docker-compose up -d mlflow > "$ART/compose-up.log" 2>&1 || fail "compose up mlflow: $(tail -5 "$ART/compose-up.log")"
wait_for "http://127.0.0.1:$MLFLOW_PORT/health" 200 180 || fail "MLflow did not answer /health in 180 s"
timed "start mlflow" "$t"; t=$(ms)
# `run` takes the dashboard service's environment: MLFLOW_TRACKING_URI is set, so the report is tracked there.
docker-compose run --rm -T dashboard report '^GSPC' "${OVERRIDES[@]/#/--set=}" "${FOLDS[@]/#/--set=}" > "$ART/report.log" 2>&1 \
  || fail "the report job failed: $(tail -20 "$ART/report.log")"
grep -q '^report: /data/reports/^GSPC.html' "$ART/report.log" || fail "the report job wrote no /data/reports/^GSPC.html"
grep -q "^tracked: 1 report(s) in MLflow at http://127.0.0.1:$MLFLOW_PORT" "$ART/report.log" \
  || fail "the report job did not track its report in the mlflow service: $(tail -5 "$ART/report.log")"
timed "report job (1 epoch, tracked)" "$t"

# --- 6. the stack and its checks -------------------------------------------------------------------------------
services=(dashboard api mlflow)
t=$(ms)
docker-compose up -d dashboard api >> "$ART/compose-up.log" 2>&1 || fail "compose up: $(tail -5 "$ART/compose-up.log")"
wait_for "http://127.0.0.1:$DASHBOARD_PORT/voila/static/voila.js" 200 120 || fail "the dashboard did not answer in 120 s"
wait_for "http://127.0.0.1:$API_PORT/health" 200 120 || fail "the API did not answer /health in 120 s"
timed "start dashboard and api" "$t"

t=$(ms)
page=$ART/dashboard.html
code=$(http_get "http://127.0.0.1:$DASHBOARD_PORT/" "$page" 300)  # Voila runs the notebook for the page
[ "$code" = 200 ] || fail "the dashboard page answered $code"
grep -q 'Forecast dashboard' "$page" || fail "the dashboard page lacks its title 'Forecast dashboard'"
code=$(http_get "http://127.0.0.1:$DASHBOARD_PORT/voila/files/reports/%5EGSPC.html" "$ART/report.html" 60)
[ "$code" = 200 ] && grep -q '\^GSPC backtest report' "$ART/report.html" \
  || fail "the dashboard does not serve the job's report reports/^GSPC.html (status $code)"
code=$(http_get "http://127.0.0.1:$DASHBOARD_PORT/voila/files/settings.ini" /dev/null 30)
[ "$code" = 403 ] || [ "$code" = 404 ] || fail "the dashboard serves settings.ini (status $code): only reports/*.html may be"
timed "check dashboard" "$t"; t=$(ms)

python3 tests/docker/check.py api "http://127.0.0.1:$API_PORT" '^GSPC' > "$ART/check-api.log" 2>&1 \
  || fail "$(tail -1 "$ART/check-api.log")"
timed "check api (health, reports, forecast)" "$t"; t=$(ms)

python3 tests/docker/check.py mlflow "http://127.0.0.1:$MLFLOW_PORT" '^GSPC' > "$ART/check-mlflow.log" 2>&1 \
  || fail "$(tail -1 "$ART/check-mlflow.log")"
timed "check mlflow (the job's run)" "$t"
cat "$ART/check-api.log" "$ART/check-mlflow.log" | sed 's/^/docker-test: /'

# The image's HEALTHCHECK, as docker sees it (its first run is 30 s after the start).
t=$(ms)
for svc in "${services[@]}"; do
  id=$(docker-compose ps -q "$svc")
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" != unhealthy ] || fail "$svc is unhealthy"
    [ $(( $(ms) - t )) -lt 180000 ] || fail "$svc not healthy in 180 s"
    sleep 2
  done
done
timed "healthchecks healthy" "$t"

# --- 7. down, and nothing left ---------------------------------------------------------------------------------
t=$(ms)
docker-compose down -v --remove-orphans > "$ART/compose-down.log" 2>&1 || fail "compose down: $(tail -5 "$ART/compose-down.log")"
STACK=0
label=label=com.docker.compose.project=$COMPOSE_PROJECT_NAME
left="$(docker ps -aq --filter "$label")$(docker volume ls -q --filter "$label")$(docker network ls -q --filter "$label")"
left+="$(docker volume ls -q | grep "^${COMPOSE_PROJECT_NAME}_" || true)"
[ -z "$left" ] || fail "left behind: $(docker ps -a --filter "$label"; docker volume ls --filter "$label"; docker network ls --filter "$label")"
timed "down -v" "$t"

size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
base=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
echo "docker-test: passed. image $IMAGE: $(( size / 1000000 )) MB (base $BASE_IMAGE: $(( base / 1000000 )) MB)"
printf '  %s\n' "${TIMES[@]}"
echo "  $(printf '%-34s %s' 'whole script' "$(secs "$T0" "$(ms)")")"

#!/usr/bin/env bash
# The container test (issue 15): the image is built and the compose stack is run here, then taken down without a trace.
#   1. a docker daemon (installs docker.io, debootstrap and docker-compose and starts dockerd when there is none);
#   2. the base image, from debootstrap, when missing (no image can be pulled here);
#   3. the project image, with the local torch wheels and pip's CA bundle (from `pip config list`) in the context;
#   4. a 1-epoch report job of the bundled ^GSPC sample into the reports volume;
#   5. the stack: the dashboard page and the job's report through it, MLflow, the API;
#   6. `docker-compose down -v`, then no container, volume or network of the test's project may be left.
# Prints the image size and the times. Runs as root (or with sudo); usage: tests/docker/run.sh (or make docker-test).
# Environment: BASE_IMAGE (lstm-forecast-base:bookworm), IMAGE (lstm-forecast:test), KEEP_DOCKERD=1 leaves a dockerd
# this script started running.
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

# --- cleanup: the stack, the context files this script copied, and a dockerd it started ---------------------------
STACK=0 DOCKERD_PID= COPIED=()
cleanup() {
  local rc=$?
  if [ "$STACK" = 1 ]; then
    [ "$rc" -eq 0 ] || docker-compose logs --no-color > "$ART/compose.log" 2>&1 || true
    docker-compose down -v --remove-orphans > /dev/null 2>&1 || true
  fi
  [ "${#COPIED[@]}" -eq 0 ] || rm -f "${COPIED[@]}"
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

# --- 3. the project image --------------------------------------------------------------------------------------
t=$(ms)
pipcfg=$( (pip3 config list || python3 -m pip config list) 2> /dev/null || true)
cert=$(sed -nE "s/^[^=]*\.cert='(.*)'$/\1/p" <<< "$pipcfg" | head -1)
links=$(sed -nE "s/^[^=]*\.find-links='(.*)'$/\1/p" <<< "$pipcfg" | head -1)
if [ -n "$cert" ] && [ -f "$cert" ] && [ ! -e docker/certs/ca-bundle.crt ]; then
  cp "$cert" docker/certs/ca-bundle.crt; COPIED+=(docker/certs/ca-bundle.crt)
fi
for dir in $links; do
  dir=${dir#file://}
  [ -d "$dir" ] || continue
  for whl in "$dir"/*.whl; do
    [ -f "$whl" ] && [ ! -e "docker/wheels/${whl##*/}" ] || continue
    ln "$whl" docker/wheels/ 2> /dev/null || cp "$whl" docker/wheels/
    COPIED+=("docker/wheels/${whl##*/}")
  done
done
say "building $IMAGE on $BASE_IMAGE (CA bundle: ${cert:-none}; local wheels: ${links:-none}); log in $ART/build.log"
docker build --network host --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" . > "$ART/build.log" 2>&1 \
  || fail "docker build failed: $(tail -20 "$ART/build.log")"
rm -f "${COPIED[@]}"; COPIED=()
timed "build image" "$t"

# --- 4. a report job into the reports volume, with MLflow up to receive its run --------------------------------
read -r DASHBOARD_PORT API_PORT MLFLOW_PORT <<< "$(free_ports 3)"
export DASHBOARD_PORT API_PORT MLFLOW_PORT
say "ports: dashboard $DASHBOARD_PORT, api $API_PORT, mlflow $MLFLOW_PORT (127.0.0.1)"
STACK=1
t=$(ms)
docker-compose up -d mlflow > "$ART/compose-up.log" 2>&1 || fail "compose up mlflow: $(tail -5 "$ART/compose-up.log")"
wait_for "http://127.0.0.1:$MLFLOW_PORT/health" 200 180 || fail "MLflow did not answer /health in 180 s"
timed "start mlflow" "$t"; t=$(ms)
docker-compose run --rm -T dashboard report '^GSPC' --start 2016-01-01 --set model.epochs=1 > "$ART/report.log" 2>&1 \
  || fail "the report job failed: $(tail -20 "$ART/report.log")"
grep -q '^report: /data/reports/^GSPC.html' "$ART/report.log" || fail "the report job wrote no /data/reports/^GSPC.html"
timed "report job (1 epoch)" "$t"

# --- 5. the stack and its checks -------------------------------------------------------------------------------
# TODO(issue 13): drop this probe once `lstm-forecast serve` exists; the API is then always started and checked.
if docker run --rm --network none "$IMAGE" lstm-forecast serve --help > /dev/null 2>&1; then API=1; else API=0; fi
services=(dashboard mlflow); [ "$API" = 0 ] || services+=(api)
t=$(ms)
docker-compose up -d "${services[@]}" >> "$ART/compose-up.log" 2>&1 || fail "compose up: $(tail -5 "$ART/compose-up.log")"
wait_for "http://127.0.0.1:$DASHBOARD_PORT/voila/static/voila.js" 200 120 || fail "the dashboard did not answer in 120 s"
[ "$API" = 0 ] || wait_for "http://127.0.0.1:$API_PORT/health" 200 120 || fail "the API did not answer /health in 120 s"
timed "start stack (${services[*]})" "$t"

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

[ "$(http_get "http://127.0.0.1:$MLFLOW_PORT/health" "$ART/mlflow-health.txt")" = 200 ] || fail "MLflow /health"
code=$(http_get "http://127.0.0.1:$MLFLOW_PORT/api/2.0/mlflow/experiments/search?max_results=10" "$ART/mlflow-experiments.json")
[ "$code" = 200 ] && grep -q '"experiments"' "$ART/mlflow-experiments.json" || fail "MLflow experiments/search answered $code"
# TODO(issue 13): once `report` tracks to MLFLOW_TRACKING_URI, check runs/search lists the job's ^GSPC run.
timed "check mlflow" "$t"; t=$(ms)

if [ "$API" = 1 ]; then
  [ "$(http_get "http://127.0.0.1:$API_PORT/health" "$ART/api-health.json")" = 200 ] || fail "API /health"
  # TODO(issue 13): check /api/v1/reports lists ^GSPC and /api/v1/forecast/^GSPC?horizon=5 answers a path.
  timed "check api" "$t"
else
  # TODO(issue 13): remove this skip with the probe above once `lstm-forecast serve` exists.
  say "SKIPPED the API check: the image has no \`lstm-forecast serve\` yet (issue 13)"
fi

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

# --- 6. down, and nothing left ---------------------------------------------------------------------------------
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

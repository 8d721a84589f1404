#!/usr/bin/env bash
# Run the Sockerless local stack (--dev): the control plane with an embedded
# store, in-process gcpsim and registry, serving the Docker API on a unix
# socket, and a forwarder in front of its TCP listener as a remote user
# would run it. Linux, root, runc and busybox-static are needed (see README
# "Quick start"). Stop with Ctrl-C: both processes drain and exit.
#
#   deploy/local/run.sh                      # state in ./.state
#   MIRROR=docker.io=http://127.0.0.1:5055 deploy/local/run.sh
#
# Script settings (environment): STATE_DIR (default ./.state), BIN_DIR
# (./bin), SOCKET (/tmp/sockerless.sock), FORWARDER_SOCKET
# (/tmp/sockerless-fwd.sock), TCP_PORT (2375), MIRROR (a --registry-mirror
# value), SOCKERLESS_TOKEN (default: a random token, never printed).
#
# Then:  DOCKER_HOST=unix:///tmp/sockerless.sock docker run --rm busybox echo hi
#   or:  DOCKER_HOST=unix:///tmp/sockerless-fwd.sock docker run --rm busybox echo hi
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
state="${STATE_DIR:-$root/.state}"
bin="${BIN_DIR:-$root/bin}"
socket="${SOCKET:-/tmp/sockerless.sock}"
fwd_socket="${FORWARDER_SOCKET:-/tmp/sockerless-fwd.sock}"
port="${TCP_PORT:-2375}"
# A fresh random token per run unless one is given; it is never printed.
token="${SOCKERLESS_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: the local stack runs function instances with runc: run as root" >&2
  exit 1
fi

mkdir -p "$bin" "$state"
(cd "$root" && go build -o "$bin/" ./services/... ./agent/...)

args=(--dev --state-dir "$state" --listen "unix://$socket" --listen "tcp://127.0.0.1:$port")
if [ -n "${MIRROR:-}" ]; then
  args+=(--registry-mirror "$MIRROR")
fi

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop EXIT INT TERM

SOCKERLESS_TOKEN="$token" "$bin/controlplane" "${args[@]}" &
pids+=($!)
for _ in $(seq 100); do
  [ -S "$socket" ] && break
  sleep 0.1
done
SOCKERLESS_TOKEN="$token" "$bin/forwarder" --listen "unix://$fwd_socket" \
  --upstream "http://127.0.0.1:$port" &
pids+=($!)

echo "sockerless: DOCKER_HOST=unix://$socket (direct) or unix://$fwd_socket (through the forwarder)"
wait -n

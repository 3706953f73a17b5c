#!/usr/bin/env bash
# Starts two mcp-worker-pool gateways on one config and HAProxy in front of them, all on loopback, and
# stops all three when it is stopped (SIGTERM/SIGINT) or HAProxy exits.
#   examples/scale-out/start.sh <config.json>
# Ports: MCP_LB_PORT (3000, the one clients use), MCP_GW1_PORT (3001), MCP_GW2_PORT (3002).
# MCP_RUN_DIR (a temporary directory) receives gw1.pid, gw2.pid and haproxy.pid.
set -euo pipefail
config=${1:?usage: start.sh <config.json>}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cli=${MCP_POOL_CLI:-$root/dist/src/cli/main.js}
export MCP_LB_HOST=${MCP_LB_HOST:-127.0.0.1} MCP_LB_PORT=${MCP_LB_PORT:-3000}
export MCP_GW1_PORT=${MCP_GW1_PORT:-3001} MCP_GW2_PORT=${MCP_GW2_PORT:-3002}
run=${MCP_RUN_DIR:-$(mktemp -d)}
mkdir -p "$run"
pids=()

stop() {
  trap - TERM INT EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop TERM INT EXIT

for n in 1 2; do
  port_var=MCP_GW${n}_PORT
  node "$cli" serve --config "$config" --host 127.0.0.1 --port "${!port_var}" 2> >(sed -u "s/^/[gw$n] /" >&2) &
  pids+=($!)
  echo $! > "$run/gw$n.pid"
done
for n in 1 2; do
  port_var=MCP_GW${n}_PORT
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:${!port_var}/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
haproxy -db -f "$here/haproxy.cfg" &
lb=$!
pids+=($lb)
echo $lb > "$run/haproxy.pid"
echo "serving at http://$MCP_LB_HOST:$MCP_LB_PORT/mcp" >&2
# Runs until stopped or HAProxy exits; a lost gateway is HAProxy's to route around.
wait "$lb" || true

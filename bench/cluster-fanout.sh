#!/usr/bin/env bash
# Cross-node fan-out: one publisher, N subscribers spread over three
# `clarion serve` nodes on one broker, against the same load on one node
# with the in-memory broker. Loopback only; stops what it started.
#
# usage: bench/cluster-fanout.sh [redis|nats] [SUBSCRIBERS] [MESSAGES] [RATE]
#   defaults: redis 9000 100 10   (RATE=0: as fast as replies come)
# needs: target/release/clarion (cargo build --release -p clarion-cli),
#        redis-server or nats-server; ulimit -n above SUBSCRIBERS + 100.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CLARION_BIN:-$ROOT/target/release/clarion}
BACKEND=${1:-redis}
SUBSCRIBERS=${2:-9000}
MESSAGES=${3:-100}
RATE=${4:-10}
BASE=${CLARION_BENCH_PORT:-18100}
WORK=$(mktemp -d)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

case "$BACKEND" in
redis)
    redis-server --port $((BASE + 9)) --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" >"$WORK/broker.log" 2>&1 &
    BROKER=redis://127.0.0.1:$((BASE + 9))
    ;;
nats)
    nats-server -js -a 127.0.0.1 -p $((BASE + 9)) -sd "$WORK/js" >"$WORK/broker.log" 2>&1 &
    BROKER=nats://127.0.0.1:$((BASE + 9))
    ;;
*) echo "usage: $0 [redis|nats] [SUBSCRIBERS] [MESSAGES] [RATE]" >&2; exit 2 ;;
esac
PIDS+=($!)
sleep 1

# One load generator on one address: lift the per-IP admission limits and
# the per-session publish rate for its one publisher.
export CLARION_LOG_LEVEL=warn CLARION_MAX_CONNECTIONS_PER_IP=100000 \
    CLARION_NEW_CONNECTION_BURST_PER_IP=100000 CLARION_PUBLISHES_PER_SECOND=0

start_node() { # PORT [ARGS...]
    local port=$1
    shift
    "$BIN" serve --listen "127.0.0.1:$port" "$@" >"$WORK/node-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        grep -q "listening on" "$WORK/node-$port.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "node on $port did not start" >&2
    cat "$WORK/node-$port.log" >&2
    exit 1
}

url() { echo "ws://127.0.0.1:$1/connection/websocket"; }

rate_args=(--rate "$RATE")
[ "$RATE" = 0 ] && rate_args=(--rate 1000000)

echo "== one node, in-memory broker: $SUBSCRIBERS subscribers"
start_node $((BASE + 0))
"$BIN" bench fanout "$(url $((BASE + 0)))" --subscribers "$SUBSCRIBERS" \
    --messages "$MESSAGES" "${rate_args[@]}"

echo "== three nodes on $BACKEND: $SUBSCRIBERS subscribers spread over them"
for n in 1 2 3; do start_node $((BASE + n)) --broker "$BROKER" --node-name "n$n"; done
"$BIN" bench fanout "$(url $((BASE + 1)))" --subscriber-url "$(url $((BASE + 2)))" \
    --subscriber-url "$(url $((BASE + 3)))" --subscribers "$SUBSCRIBERS" \
    --messages "$MESSAGES" "${rate_args[@]}"

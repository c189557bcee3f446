#!/usr/bin/env bash
# Prove the scenario spec (README.md beside this file) and its two peer
# implementations against each other: every scenario client against every
# scenario server, over ws:// and over wss:// with a throwaway self-signed
# certificate, without compression; then again over ws:// with both sides in
# --deflate window10 (permessage-deflate with 1 KiB windows). Needs what
# scripts/install-test-deps.sh installs.
#
# usage: tests/interop/cross-check.sh
#
# environment:
#   CLARION_INTEROP_PYTHON    python with `websockets`  default target/interop-venv/bin/python
#   CLARION_INTEROP_NODE_DIR  folder with node_modules/ws  default tests/interop/node
#
# Prints each client's lines prefixed with "<client> -> <server> <scheme> <mode>:",
# then "cross-check: N passed, M failed" (combinations); exit 0 only if all passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${CLARION_INTEROP_PYTHON:-$ROOT/target/interop-venv/bin/python}
NODE_DIR=${CLARION_INTEROP_NODE_DIR:-$ROOT/tests/interop/node}
PY_DIR=$ROOT/tests/interop/python

WORK=$(mktemp -d /tmp/clarion-interop.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.log"

# start_server NAME CMD... : start a scenario server, read its LISTENING line,
# set PORT_<NAME>.
start_server() {
    local name=$1 out="$WORK/$1.out" port="" _
    shift
    "$@" >"$out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    for _ in $(seq 100); do
        port=$(sed -n 's/^LISTENING \([0-9][0-9]*\)$/\1/p' "$out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "cross-check: server $name did not print LISTENING" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
    printf -v "PORT_$name" '%s' "$port"
}

TLS=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
start_server python_ws "$PY" "$PY_DIR/peer_server.py" --port 0
start_server python_wss "$PY" "$PY_DIR/peer_server.py" --port 0 "${TLS[@]}"
start_server node_ws node "$NODE_DIR/peer_server.js" --port 0
start_server node_wss node "$NODE_DIR/peer_server.js" --port 0 "${TLS[@]}"
DEFLATE=window10
start_server python_deflate "$PY" "$PY_DIR/peer_server.py" --port 0 --deflate "$DEFLATE"
start_server node_deflate node "$NODE_DIR/peer_server.js" --port 0 --deflate "$DEFLATE"

passed=0
failed=0
# check CLIENT SERVER SCHEME MODE: one client run against one server.
check() {
    local client=$1 server=$2 scheme=$3 mode=$4 port_var url status=0 label
    local -a cmd
    if [ "$mode" = off ]; then
        port_var="PORT_${server}_$scheme"
    else
        port_var="PORT_${server}_deflate"
    fi
    url="$scheme://127.0.0.1:${!port_var}"
    if [ "$client" = python ]; then
        cmd=("$PY" "$PY_DIR/peer_client.py" "$url")
    else
        cmd=(node "$NODE_DIR/peer_client.js" "$url")
    fi
    cmd+=(--deflate "$mode")
    [ "$scheme" = wss ] && cmd+=(--ca "$WORK/cert.pem")
    label="$client -> $server $scheme $mode"
    "${cmd[@]}" >"$WORK/client.out" 2>&1 || status=$?
    sed "s/^/$label: /" "$WORK/client.out"
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

for client in python node; do
    for server in python node; do
        check "$client" "$server" ws off
        check "$client" "$server" wss off
        check "$client" "$server" ws "$DEFLATE"
    done
done
echo "cross-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

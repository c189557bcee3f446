#!/usr/bin/env bash
# Run Autobahn|Testsuite against Clarion, as a server and as a client, and
# compare every case's verdict with conformance/expected-{server,client}.json.
#
# usage: scripts/autobahn.sh [quick|full]       (from any directory)
#   quick            cases 1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* (under a minute)
#   full (default)   all 517 cases each way, permessage-deflate included
#
# Builds `clarion` and the `autobahn-client` example in release mode, then:
#   server: `clarion echo` on a free port, ../shared/autobahn/run-server-tests.sh
#           against it, report in autobahn-reports/servers;
#   client: ../shared/autobahn/run-client-tests.sh with the autobahn-client
#           example, report in autobahn-reports/clients;
# and scripts/conformance.py check for each. Exit 1 if any verdict differs
# from the expected one, 2 if a suite did not run.
#
# After a deliberate change of verdicts:
#   scripts/conformance.py update conformance/expected-server.json autobahn-reports/servers
#   scripts/conformance.py update conformance/expected-client.json autobahn-reports/clients
#
# environment:
#   AUTOBAHN_SERVER_CMD   self-check of this script only: the server command
#                         to test instead of clarion (no build, no client run,
#                         no comparison); `{port}` in it becomes the port, e.g.
#                         'target/interop-venv/bin/python tests/interop/python/peer_server.py --port {port}'
#   AUTOBAHN_SERVER_PATH  path appended to the URL, e.g. /echo    default none
#   CLARION_SHARED_DIR    the shared folder holding autobahn/      default ../shared
#   AUTOBAHN_EXCLUDE, AUTOBAHN_TIMEOUT, AUTOBAHN_VENV  passed on to the suite
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED=${CLARION_SHARED_DIR:-$ROOT/../shared}
OUTDIR=$ROOT/autobahn-reports/servers
MODE=${1:-full}
CLIENT_OUTDIR=$ROOT/autobahn-reports/clients

case $MODE in
quick) CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*' ;;
full) CASES='*' ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

log() { echo "autobahn.sh: $*" >&2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVER_PID=
WORK=$(mktemp -d /tmp/clarion-autobahn.XXXXXX)
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Start the server under test in the background; sets SERVER_PID.
start_server() {
    local port=$1
    mkdir -p "$OUTDIR"
    if [ -n "${AUTOBAHN_SERVER_CMD:-}" ]; then
        local cmd=${AUTOBAHN_SERVER_CMD//\{port\}/$port}
        log "server under test (AUTOBAHN_SERVER_CMD): $cmd"
        # exec: the PID we hold is the server's own, not a wrapping shell's
        bash -c "exec $cmd" >"$OUTDIR/server.log" 2>&1 &
    else
        local bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/clarion
        # The suite is one client opening a connection per case, hundreds in
        # a few seconds: lift the per-IP admission limits meant for the
        # Internet (they are tested in tests/adversarial/).
        local limits=(--max-connections-per-ip 100000 --max-new-connections-per-second 1000000
            --new-connection-burst 1000000)
        log "server under test: $bin echo --listen 127.0.0.1:$port ${limits[*]}"
        "$bin" echo --listen "127.0.0.1:$port" "${limits[@]}" >"$OUTDIR/server.log" 2>&1 &
    fi
    SERVER_PID=$!
}

# Wait (up to 30 s) until 127.0.0.1:PORT accepts a TCP connection.
wait_for_port() {
    local port=$1 _
    for _ in $(seq 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the server exited before listening; its log:"
            tail -n 20 "$OUTDIR/server.log" >&2
            exit 2
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "the server does not accept connections on 127.0.0.1:$port after 30 s"
    exit 2
}

# The count before WORD in the summary line ("... 3 FAILED, ..."), 0 if absent.
count_of() {
    local n
    n=$(sed -n "s/.*[ ,]\([0-9][0-9]*\) $1\b.*/\1/p" <<<"$2")
    echo "${n:-0}"
}

if [ -z "${AUTOBAHN_SERVER_CMD:-}" ]; then
    cargo build --release -p clarion-cli
    cargo build --release -p clarion-ws --example autobahn-client
fi

PORT=$(free_port)
start_server "$PORT"
wait_for_port "$PORT"
URL="ws://127.0.0.1:$PORT${AUTOBAHN_SERVER_PATH:-}"
log "$MODE: cases '$CASES' against $URL"

status=0
AUTOBAHN_OUTDIR=$OUTDIR "$SHARED/autobahn/run-server-tests.sh" "$URL" "$CASES" |
    tee "$WORK/summary" || status=$?
summary=$(grep -E '^autobahn server: [0-9]+ cases' "$WORK/summary" | tail -n 1 || true)
if [ "$status" -ne 0 ] || [ -z "$summary" ]; then
    log "the suite did not run to a summary (exit status $status)"
    exit 2
fi
if [ -n "${AUTOBAHN_SERVER_CMD:-}" ]; then
    failed=$(count_of FAILED "$summary")
    other=$(count_of OTHER "$summary")
    if [ "$failed" -ne 0 ] || [ "$other" -ne 0 ]; then
        log "$failed FAILED, $other OTHER: see $OUTDIR (python3 $SHARED/autobahn/summarize.py $OUTDIR)"
        exit 1
    fi
    log "no FAILED case (report: $OUTDIR)"
    exit 0
fi
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

CLIENT_PORT=$(free_port)
log "$MODE: cases '$CASES' for the client (autobahn-client example)"
status=0
"$SHARED/autobahn/run-client-tests.sh" --port "$CLIENT_PORT" --outdir "$CLIENT_OUTDIR" --cases "$CASES" \
    -- "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/autobahn-client" |
    tee "$WORK/client-summary" || status=$?
if [ "$status" -ne 0 ] || ! grep -qE '^autobahn client: [0-9]+ cases' "$WORK/client-summary"; then
    log "the client suite did not run to a summary (exit status $status)"
    exit 2
fi

verdicts=0
python3 scripts/conformance.py check conformance/expected-server.json "$OUTDIR" --cases "$CASES" || verdicts=1
python3 scripts/conformance.py check conformance/expected-client.json "$CLIENT_OUTDIR" --cases "$CASES" || verdicts=1
if [ "$verdicts" -ne 0 ]; then
    log "verdicts changed: see $OUTDIR and $CLIENT_OUTDIR (python3 $SHARED/autobahn/summarize.py DIR)"
    exit 1
fi
log "every verdict as expected (reports: $OUTDIR, $CLIENT_OUTDIR)"

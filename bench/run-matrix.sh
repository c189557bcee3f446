#!/usr/bin/env bash
# The comparative benchmark matrix: Clarion against fastwebsockets,
# tokio-tungstenite and a raw TCP echo (the ceiling), driven by
# `clarion bench`. Method and caveats: bench/README.md.
#
# usage: bench/run-matrix.sh            (about 12 minutes)
#        QUICK=1 bench/run-matrix.sh    (a 1-second smoke matrix, < 3 minutes)
#
# Environment (defaults in brackets; QUICK=1 changes the starred ones):
#   DURATION     seconds measured per echo and latency cell [5*; 1]
#   WARMUP       seconds of load before measuring [1]
#   REPEAT       runs of each key cell (KEY_CONNS connections) [3*; 1]
#   REPEAT_ALL=1 repeat every echo cell, not only the key ones
#   KEY_CONNS    the connection count whose cells are repeated [100]
#   SERVERS      [tcp clarion fastwebsockets tungstenite]
#   SIZES        message sizes in bytes [16 1024 65536]
#   CONNS        connection counts [1 100 512]
#   INFLIGHT     messages in flight per connection [16 for 1 connection,
#                4 up to 100 connections, 1 beyond]
#   MESSAGE      binary or text [binary]
#   SECTIONS     [echo latency idle connect]
#   IDLE_CONNS   idle connections per server [10000*; 1000]
#   LATENCY_RATE messages per second of the latency section [10000]
#   CONNECT_DURATION, CONNECT_CONCURRENCY  the connect-rate section [3*; 1], [32]
#   QUIET_IDLE   idle % each pinned core must show before a cell [90]
#   QUIET_MAX    most seconds to wait for it before one cell [20*; 3]
#   QUIET_BUDGET most seconds to wait for it in the whole run [180*; 30]
#   SERVER_CPU, CLIENT_CPU  the cores to pin to [0], [1]
#   SKIP_BUILD=1 use the binaries already built
#   OUT          the JSON-lines file [bench/results/<date>-<host>.jsonl]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-1} REPEAT=${REPEAT:-1} IDLE_CONNS=${IDLE_CONNS:-1000}
    CONNECT_DURATION=${CONNECT_DURATION:-1} QUIET_MAX=${QUIET_MAX:-3} QUIET_SAMPLE=0.5
    QUIET_BUDGET=${QUIET_BUDGET:-30}
else
    DURATION=${DURATION:-5} REPEAT=${REPEAT:-3} IDLE_CONNS=${IDLE_CONNS:-10000}
    CONNECT_DURATION=${CONNECT_DURATION:-3} QUIET_MAX=${QUIET_MAX:-20} QUIET_SAMPLE=1
    QUIET_BUDGET=${QUIET_BUDGET:-180}
fi
WARMUP=${WARMUP:-1}
REPEAT_ALL=${REPEAT_ALL:-0}
KEY_CONNS=${KEY_CONNS:-100}
SERVERS=${SERVERS:-"tcp clarion fastwebsockets tungstenite"}
SIZES=${SIZES:-"16 1024 65536"}
CONNS=${CONNS:-"1 100 512"}
INFLIGHT=${INFLIGHT:-}
MESSAGE=${MESSAGE:-binary}
SECTIONS=${SECTIONS:-"echo latency idle connect"}
LATENCY_RATE=${LATENCY_RATE:-10000}
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-32}
QUIET_IDLE=${QUIET_IDLE:-90}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SOURCE_IPS=${SOURCE_IPS:-127.0.0.1-127.0.0.40}
BINARY=()
[ "$MESSAGE" = text ] || BINARY=(--binary)

HOST=$(hostname -s 2>/dev/null || hostname)
if [ -z "${OUT:-}" ]; then
    OUT=$ROOT/bench/results/$(date -u +%Y-%m-%d)-$HOST.jsonl
    n=2
    while [ -e "$OUT" ]; do
        OUT=$ROOT/bench/results/$(date -u +%Y-%m-%d)-$HOST-$n.jsonl
        n=$((n + 1))
    done
fi
WORK=$(mktemp -d)
SERVER_PID=
QUIET=0
QUIET_SPENT=0

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "run-matrix: $*" >&2
    exit 1
}

log() {
    echo "[$(date +%H:%M:%S)] $*" >&2
}

# ---- build and checks ------------------------------------------------------

build() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building release binaries"
        cargo build --release -p clarion-bench -p clarion-cli
    fi
    local target release
    target=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    release=$target/release
    # A snapshot: a build in the shared target directory during the run must
    # not swap a binary between two cells.
    BIN=$WORK/bin
    mkdir -p "$BIN"
    for server in $SERVERS; do
        [ -x "$release/echo-$server" ] || die "no $release/echo-$server (build clarion-bench)"
        cp "$release/echo-$server" "$BIN/"
    done
    [ -x "$release/clarion" ] || die "no $release/clarion (build clarion-cli)"
    cp "$release/clarion" "$BIN/"
    CLARION=$BIN/clarion
    "$CLARION" bench --help >/dev/null 2>&1 ||
        die "\`clarion bench\` is not in this build of the clarion binary yet"
}

# Every server and load generator needs a file descriptor per connection.
raise_fd_limit() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
}

# ---- the machine ------------------------------------------------------------

# The first line of the results: date, machine and method, as JSON.
write_meta() {
    DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) HOST=$HOST \
        CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') \
        NPROC=$(nproc) MEM_KIB=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) \
        KERNEL=$(uname -sr) RUSTC=$(rustc --version) \
        COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates bench 2>/dev/null || echo "+dirty") \
        PEERS=$(peer_versions) \
        DURATION=$DURATION WARMUP=$WARMUP REPEAT=$REPEAT KEY_CONNS=$KEY_CONNS \
        REPEAT_ALL=$REPEAT_ALL QUICK=$QUICK MESSAGE=$MESSAGE \
        SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU QUIET_IDLE=$QUIET_IDLE \
        python3 -c '
import json, os
keys = ["DATE", "HOST", "CPU_MODEL", "NPROC", "MEM_KIB", "KERNEL", "RUSTC", "COMMIT",
        "PEERS", "DURATION", "WARMUP", "REPEAT", "KEY_CONNS", "REPEAT_ALL", "QUICK",
        "MESSAGE", "SERVER_CPU",
        "CLIENT_CPU", "QUIET_IDLE"]
meta = {k.lower(): os.environ[k] for k in keys}
meta["section"] = "meta"
print(json.dumps(meta))' >>"$OUT"
}

# The versions Cargo.lock resolved for the peers and tokio.
peer_versions() {
    python3 - "$ROOT/Cargo.lock" <<'EOF'
import re, sys
lock = open(sys.argv[1]).read()
names = ["fastwebsockets", "tokio-tungstenite", "tungstenite", "hyper", "tokio"]
found = re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"', lock)
print(", ".join(f"{n} {v}" for n, v in found if n in names))
EOF
}

# Prints the lowest idle percentage of the two pinned cores over QUIET_SAMPLE s.
cpu_idle_pct() {
    local pattern="^cpu($SERVER_CPU|$CLIENT_CPU) "
    local before after
    before=$(grep -E "$pattern" /proc/stat)
    sleep "$QUIET_SAMPLE"
    after=$(grep -E "$pattern" /proc/stat)
    printf '%s\n%s\n' "$before" "$after" | awk '
        { total = 0; for (i = 2; i <= 9; i++) total += $i; idle = $5 + $6 }
        !($1 in t0) { t0[$1] = total; i0[$1] = idle; next }
        { pct = 100 * (idle - i0[$1]) / (total - t0[$1] + 1e-9); if (min == "" || pct < min) min = pct }
        END { printf "%d\n", min }'
}

# Waits until both pinned cores are QUIET_IDLE % idle: at most QUIET_MAX s
# per cell and QUIET_BUDGET s per run (a machine that stays busy must not
# stretch the run without end); sets QUIET to the last idle percentage seen.
wait_quiet() {
    local start=$SECONDS
    while :; do
        QUIET=$(cpu_idle_pct)
        [ "$QUIET" -lt "$QUIET_IDLE" ] || break
        local waited=$((SECONDS - start))
        if [ "$waited" -ge "$QUIET_MAX" ] || [ $((QUIET_SPENT + waited)) -ge "$QUIET_BUDGET" ]; then
            log "machine not quiet: ${QUIET}% idle, running anyway"
            break
        fi
    done
    QUIET_SPENT=$((QUIET_SPENT + SECONDS - start))
}

# ---- servers ----------------------------------------------------------------

# start_server NAME: starts echo-NAME pinned to SERVER_CPU; sets SERVER_PID, URL.
start_server() {
    local out=$WORK/server.out
    : >"$out"
    taskset -c "$SERVER_CPU" "$BIN/echo-$1" --listen 127.0.0.1:0 >"$out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    local line= tries=0
    while [ $tries -lt 100 ]; do
        line=$(head -n1 "$out")
        case $line in "listening on "*) break ;; esac
        kill -0 "$SERVER_PID" 2>/dev/null || die "echo-$1 exited: $(cat "$WORK/server.err")"
        sleep 0.05
        tries=$((tries + 1))
    done
    case $line in "listening on "*) URL=${line#listening on } ;; *) die "echo-$1 did not start" ;; esac
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# ---- cells ------------------------------------------------------------------

inflight_for() {
    if [ -n "$INFLIGHT" ]; then
        echo "$INFLIGHT"
    elif [ "$1" -le 1 ]; then
        echo 16
    elif [ "$1" -le 100 ]; then
        echo 4
    else
        echo 1
    fi
}

# run_bench TIMEOUT ARGS...: runs `clarion bench ARGS --json` pinned to
# CLIENT_CPU; sets RESULT to its JSON line, or to null and ERROR.
run_bench() {
    local limit=$1
    shift
    RESULT=null ERROR=
    local line
    line=$(timeout "$limit" taskset -c "$CLIENT_CPU" "$CLARION" bench "$@" --json \
        2>"$WORK/bench.err" | tail -n1) || true
    case $line in
        "{"*) RESULT=$line ;;
        *) ERROR=$(tr -d '"\\' <"$WORK/bench.err" | tr '\n' ' ' | cut -c1-300)
           [ -n "$ERROR" ] || ERROR="no output (timeout ${limit}s?)"
           log "  failed: $ERROR" ;;
    esac
}

# record SECTION SERVER FIELDS: appends one JSON line; FIELDS is `"k":v,`...
record() {
    local error=null
    [ -z "$ERROR" ] || error="\"$ERROR\""
    printf '{"section":"%s","server":"%s",%s"quiet_idle_pct":%s,"error":%s,"result":%s}\n' \
        "$1" "$2" "$3" "$QUIET" "$error" "$RESULT" >>"$OUT"
}

echo_cell() {
    local server=$1 size=$2 conns=$3 run=$4 k
    k=$(inflight_for "$conns")
    wait_quiet
    start_server "$server"
    log "echo $server size=$size conns=$conns in-flight=$k run=$run (idle ${QUIET}%)"
    run_bench $((DURATION + WARMUP + 60)) echo "$URL" --connections "$conns" \
        --in-flight "$k" --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
        "${BINARY[@]}" --threads 1 --server-pid "$SERVER_PID"
    stop_server
    record echo "$server" "\"size\":$size,\"conns\":$conns,\"inflight\":$k,\"run\":$run,"
}

echo_section() {
    local size conns run runs server
    for size in $SIZES; do
        for conns in $CONNS; do
            runs=1
            if [ "$REPEAT_ALL" = 1 ] || [ "$conns" = "$KEY_CONNS" ]; then runs=$REPEAT; fi
            # Servers interleaved within each run: drift hits them all alike.
            for run in $(seq 1 "$runs"); do
                for server in $SERVERS; do
                    echo_cell "$server" "$size" "$conns" "$run"
                done
            done
        done
    done
}

latency_section() {
    local server
    for server in $SERVERS; do
        wait_quiet
        start_server "$server"
        log "latency $server rate=$LATENCY_RATE conns=100 size=1024"
        run_bench $((DURATION + WARMUP + 60)) latency "$URL" --rate "$LATENCY_RATE" \
            --connections 100 --size 1024 --duration "$DURATION" --warmup "$WARMUP" \
            "${BINARY[@]}" --threads 1 --server-pid "$SERVER_PID"
        stop_server
        record latency "$server" "\"rate\":$LATENCY_RATE,\"conns\":100,\"size\":1024,"
    done
}

idle_section() {
    local server
    for server in $SERVERS; do
        wait_quiet
        start_server "$server"
        log "idle $server conns=$IDLE_CONNS"
        run_bench 180 idle "$URL" --connections "$IDLE_CONNS" --source-ips "$SOURCE_IPS" \
            --threads 1 --server-pid "$SERVER_PID"
        stop_server
        record idle "$server" "\"conns\":$IDLE_CONNS,"
    done
}

connect_section() {
    local server
    for server in $SERVERS; do
        wait_quiet
        start_server "$server"
        log "connect-rate $server concurrency=$CONNECT_CONCURRENCY"
        run_bench $((CONNECT_DURATION + 60)) connect-rate "$URL" \
            --duration "$CONNECT_DURATION" --concurrency "$CONNECT_CONCURRENCY" --threads 1 \
            --server-pid "$SERVER_PID"
        stop_server
        record connect "$server" "\"concurrency\":$CONNECT_CONCURRENCY,"
    done
}

main() {
    build
    raise_fd_limit
    mkdir -p "$(dirname "$OUT")"
    write_meta
    log "results: $OUT"
    local section
    for section in $SECTIONS; do
        case $section in
            echo) echo_section ;;
            latency) latency_section ;;
            idle) idle_section ;;
            connect) connect_section ;;
            *) die "unknown section $section" ;;
        esac
    done
    local table=${OUT%.jsonl}.md
    python3 "$ROOT/bench/render.py" "$OUT" >"$table"
    cat "$table"
    log "table: $table"
}

main

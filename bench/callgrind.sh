#!/usr/bin/env bash
# Instructions per echoed message, counted by callgrind in each echo
# server's user space: repeatable whatever else the machine does (unlike
# CPU time), blind to the kernel (syscalls cost the same for everyone
# doing the same reads and writes; compare their counts with strace -c).
#
# usage: bench/callgrind.sh [SIZE CONNS INFLIGHT]...   (default: the three
#        cells below); SERVERS="clarion fastwebsockets tcp" by default.
# Prints one line per server and cell; keeps the profiles in
# target/callgrind/ for `callgrind_annotate`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SERVERS=${SERVERS:-"clarion fastwebsockets tcp"}
CELLS=("$@")
if [ ${#CELLS[@]} -eq 0 ]; then
    CELLS=("65536 1 16" "1024 512 1" "16 512 1")
fi
OUT_DIR=target/callgrind
mkdir -p "$OUT_DIR"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p clarion-bench -p clarion-cli >&2
CLIENT=target/release/clarion

# One server under callgrind: warm up (handshakes, buffers), zero the
# counters, measure 3 s of load, dump. Prints "messages instructions".
measure() {
    local name=$1 size=$2 conns=$3 inflight=$4
    local out="$OUT_DIR/$name.$size.$conns.$inflight"
    rm -f "$out".*
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" \
        "target/release/echo-$name" --listen 127.0.0.1:0 >"$out.stdout" 2>"$out.stderr" &
    local pid=$!
    for _ in $(seq 100); do grep -q ws:// "$out.stdout" && break; sleep 0.2; done
    local url
    url=$(grep -o 'ws://[0-9.:]*' "$out.stdout" | head -1)
    local load=(--threads 1 --binary --size "$size" --connections "$conns" --in-flight "$inflight")
    "$CLIENT" bench echo "$url" "${load[@]}" --duration 1 --warmup 0 >/dev/null 2>&1 || true
    callgrind_control -z "$pid" >/dev/null
    local messages
    messages=$("$CLIENT" bench echo "$url" "${load[@]}" --duration 3 --warmup 0 --json 2>/dev/null |
        tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])' || echo 0)
    callgrind_control -d "$pid" >/dev/null
    sleep 0.5
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local profile
    profile=$(ls -t "$out".[0-9]*.[0-9]* 2>/dev/null | head -1)
    local total
    total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    echo "$messages ${total:-0} $profile"
}

for cell in "${CELLS[@]}"; do
    read -r size conns inflight <<<"$cell"
    for name in $SERVERS; do
        # Under valgrind a run can miss its handshake deadline: retry once.
        for attempt in 1 2; do
            read -r messages total profile <<<"$(measure "$name" "$size" "$conns" "$inflight")"
            [ "$messages" -gt 0 ] && break
        done
        if [ "$messages" -gt 0 ]; then
            printf '%-15s size=%-6s conns=%-4s in_flight=%-3s messages=%-7s instructions/message=%s  (%s)\n' \
                "$name" "$size" "$conns" "$inflight" "$messages" "$((total / messages))" "$profile"
        else
            printf '%-15s size=%-6s conns=%-4s in_flight=%-3s FAILED\n' "$name" "$size" "$conns" "$inflight"
        fi
    done
done

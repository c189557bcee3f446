#!/usr/bin/env bash
# Install what the tests need, and only what is missing (idempotent; a few
# seconds when everything is there already):
#   - Debian packages: python3 with venv, nodejs, npm, openssl, patch, a C
#     compiler (ring, under rustls, builds C), chromium (the browser tests),
#     redis-server and redis-tools, nats-server, nginx-light (the broker and
#     cluster tests start their own on free ports; policy-rc.d keeps the
#     system services from starting) -- apt-get only when missing;
#   - the interop peers' Python venv, target/interop-venv, from
#     tests/interop/python/requirements.txt;
#   - the interop peers' node_modules (ws, and playwright-core, which drives
#     Debian's /usr/bin/chromium: never `playwright install`), `npm ci` in
#     tests/interop/node, when missing or stale against package*.json;
#   - the client SDK's node_modules (typescript, esbuild, ws, playwright-core:
#     dev dependencies only), `npm ci` in clients/js, the same way;
#   - Autobahn|Testsuite, via ../shared/autobahn/setup.sh.
# The Rust toolchain is not installed here: it must be on the machine.
#
# usage: scripts/install-test-deps.sh        (from any directory)
#
# environment:
#   CLARION_SHARED_DIR   the shared folder holding autobahn/   default ../shared
#   CLARION_BASE_PYTHON  python that makes the venv            default python3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED=${CLARION_SHARED_DIR:-$ROOT/../shared}
BASE_PYTHON=${CLARION_BASE_PYTHON:-python3}
VENV=$ROOT/target/interop-venv
PY_REQS=$ROOT/tests/interop/python/requirements.txt
NODE_DIR=$ROOT/tests/interop/node
SDK_DIR=$ROOT/clients/js
CHROMIUM=/usr/bin/chromium
START=$(date +%s)

log() { echo "install-test-deps: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# The Debian packages behind the commands and modules the tests use.
missing_packages() {
    have "$BASE_PYTHON" || echo python3
    if ! have "$BASE_PYTHON" || ! "$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        echo python3-venv
    fi
    have node || echo nodejs
    have npm || echo npm
    have openssl || echo openssl
    have patch || echo patch # autobahn/setup.sh patches the suite
    have cc || echo gcc libc6-dev
    [ -x "$CHROMIUM" ] || echo chromium # tests/browser.rs
    have redis-server || echo redis-server # crates/clarion-broker-redis/tests
    have redis-cli || echo redis-tools # tests/cluster.rs (CLIENT KILL)
    have nats-server || [ -x /usr/sbin/nats-server ] || echo nats-server # clarion-broker-nats, tests/cluster.rs
    have nginx || [ -x /usr/sbin/nginx ] || echo nginx-light # tests/cluster.rs (the load balancer)
}

install_packages() {
    local -a pkgs sudo=()
    read -r -a pkgs <<<"$(missing_packages | tr '\n' ' ')"
    if [ "${#pkgs[@]}" -eq 0 ]; then
        return 0
    fi
    if ! have apt-get; then
        log "missing ${pkgs[*]} and no apt-get to install them"
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    log "apt-get install ${pkgs[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Services (nginx, redis, nats) must not start as system services: the
    # tests run their own on free loopback ports. policy-rc.d says no.
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        added_policy=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    if [ -n "$added_policy" ]; then
        "${sudo[@]}" rm -f "$policy"
    fi
}

# Print a fingerprint of files (to know when an install is stale).
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

python_venv() {
    local stamp=$VENV/.clarion-stamp want
    want="$(fingerprint "$PY_REQS") $("$BASE_PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
        "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
        return 0
    fi
    log "python venv $VENV"
    "$BASE_PYTHON" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$PY_REQS"
    echo "$want" >"$stamp"
}

# node_modules DIR: `npm ci` in DIR when its node_modules is missing or
# stale against package*.json.
node_modules() {
    local dir=$1 stamp=$1/node_modules/.clarion-stamp want
    want=$(fingerprint "$dir/package.json" "$dir/package-lock.json")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
}

autobahn() {
    if [ ! -f "$SHARED/autobahn/setup.sh" ]; then
        log "no $SHARED/autobahn/setup.sh (set CLARION_SHARED_DIR)"
        exit 1
    fi
    bash "$SHARED/autobahn/setup.sh"
}

install_packages
python_venv
node_modules "$NODE_DIR"
node_modules "$SDK_DIR"
autobahn
log "ready ($(($(date +%s) - START)) s): $VENV, $NODE_DIR/node_modules, $SDK_DIR/node_modules, $CHROMIUM, autobahn"

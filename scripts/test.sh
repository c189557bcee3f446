#!/usr/bin/env bash
# The project's test command (CI runs exactly this, through .ci/run).
#
# usage: scripts/test.sh        (from any directory)
#
# Steps, stopping at the first failure:
#   1. scripts/install-test-deps.sh  (what is missing: venv, node_modules, Autobahn)
#   2. tests/interop/cross-check.sh  (the Python and Node interop peers against each other)
#   3. cargo fmt --all -- --check, scripts/check-sans-io.sh
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo test --workspace
#   6. clients/js/scripts/ci.sh      (the client SDK: cargo build --release -p
#      clarion-cli, then `npm test` in clients/js: unit, integration against
#      the release binary, headless Chromium; about a minute)
#   7. scripts/autobahn.sh full      (CLARION_AUTOBAHN=quick for cases 1-10 only)
#
# Exports for the Rust tests that drive the interop peers:
#   CLARION_INTEROP_PYTHON    the interop venv's python (absolute path)
#   CLARION_INTEROP_NODE_DIR  absolute path of tests/interop/node
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
START=$(date +%s)
STEP=
DONE=()

export CLARION_INTEROP_PYTHON=$ROOT/target/interop-venv/bin/python
export CLARION_INTEROP_NODE_DIR=$ROOT/tests/interop/node

summary() {
    local status=$? elapsed=$(($(date +%s) - START))
    echo
    if [ "$status" -eq 0 ]; then
        echo "test.sh: OK: ${#DONE[@]} steps (${DONE[*]}) in ${elapsed} s"
    else
        echo "test.sh: FAILED at step '$STEP' (exit status $status) after ${elapsed} s"
    fi
}
trap summary EXIT

# step NAME CMD...: print a header, run CMD (set -e stops on failure).
step() {
    STEP=$1
    shift
    echo
    echo "==== test.sh: $STEP: $*"
    "$@"
    DONE+=("$STEP")
}

step deps scripts/install-test-deps.sh
step peers tests/interop/cross-check.sh
step fmt cargo fmt --all -- --check
step sans-io scripts/check-sans-io.sh
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test cargo test --workspace
step sdk clients/js/scripts/ci.sh
step autobahn scripts/autobahn.sh "${CLARION_AUTOBAHN:-full}"

#!/usr/bin/env bash
# The client SDK's tests (clients/js): build the release binary its
# integration and browser tests run (`clarion serve`), then `npm test`
# (unit tests, the committed bundle checked against the sources, Node
# against the real server, headless Chromium). node_modules comes from
# scripts/install-test-deps.sh (`npm ci` in clients/js).
#
# usage: clients/js/scripts/ci.sh        (from any directory; scripts/test.sh runs it)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
cargo build --release -p clarion-cli
export CLARION_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/clarion
cd clients/js
if [ ! -d node_modules ]; then
    echo "clients/js/scripts/ci.sh: clients/js/node_modules is missing: run scripts/install-test-deps.sh" >&2
    exit 1
fi
npm test

#!/usr/bin/env bash
# The client SDK's tests (clients/js): build the binary its integration
# and browser tests run (`clarion serve`; the debug build, which `cargo
# test` has just made, so CI does not spend minutes on a release build;
# CLARION_PROFILE=release for the release one), then `npm test`
# (unit tests, the committed bundle checked against the sources, Node
# against the real server, headless Chromium). node_modules comes from
# scripts/install-test-deps.sh (`npm ci` in clients/js).
#
# usage: clients/js/scripts/ci.sh        (from any directory; scripts/test.sh runs it)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
PROFILE=${CLARION_PROFILE:-debug}
if [ "$PROFILE" = release ]; then
    cargo build --release -p clarion-cli
else
    cargo build -p clarion-cli
fi
export CLARION_BIN=${CLARION_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/clarion}
cd clients/js
if [ ! -d node_modules ]; then
    echo "clients/js/scripts/ci.sh: clients/js/node_modules is missing: run scripts/install-test-deps.sh" >&2
    exit 1
fi
npm test

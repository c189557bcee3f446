#!/usr/bin/env bash
# The project's run command (README): build the release binary and start the
# main job on 127.0.0.1:8080.
#
# Today the main job is `clarion echo` (ws://127.0.0.1:8080, any path); when
# `clarion serve` lands (the real-time server, demo pages at
# http://127.0.0.1:8080/), this script starts that instead.
#
# usage: scripts/run.sh [extra arguments for clarion echo]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release -p clarion-cli
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/clarion" echo --listen 127.0.0.1:8080 "$@"

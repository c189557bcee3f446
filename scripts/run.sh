#!/usr/bin/env bash
# The project's run command (README): build the release binary and start the
# main job on 127.0.0.1:8080.
#
# The main job is `clarion serve`, the real-time server, on its in-memory
# broker (no other service needed): the demo (chat room with presence, live
# leaderboard) at http://127.0.0.1:8080/, WebSocket clients at
# ws://127.0.0.1:8080/connection/websocket. Open the demo in two tabs.
#
# usage: scripts/run.sh [extra arguments for clarion serve, e.g. --api-key KEY]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release -p clarion-cli
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/clarion" serve --listen 127.0.0.1:8080 "$@"

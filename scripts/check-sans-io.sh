#!/usr/bin/env bash
# The core must stay sans-IO: clarion-proto may not depend on an async
# runtime, a socket library or an RNG (DESIGN.md section 2). Fails if
# `cargo tree` shows one among its normal dependencies.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
forbidden='^(tokio|futures|futures-[a-z-]+|async-std|smol|mio|socket2|rand|rand_core|getrandom)$'
deps=$(cargo tree -p clarion-proto -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$deps" || true)
if [ -n "$bad" ]; then
    echo "check-sans-io: clarion-proto depends on: $bad" >&2
    exit 1
fi
echo "check-sans-io: clarion-proto has $(wc -l <<<"$deps") crates in its tree, none of them I/O, async or RNG"

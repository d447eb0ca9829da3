#!/usr/bin/env bash
# The PostgreSQL figures of BENCHMARKS.md: a release `vinr serve` on a fresh PostgreSQL
# database (rate limits off) and `vinr-bench` against it, from the same machine.
# Usage: scripts/bench-postgres.sh [DURATION] [CONNECTIONS] [ADMIN_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
connections="${2:-64}"
admin="${3:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vinr-target}"
cargo build --release --locked -p vinr-server -p vinr-bench
bin="$CARGO_TARGET_DIR/release"

database="vinr_bench_$$"
psql "$admin" -qc "CREATE DATABASE $database"
url="${admin%/*}/$database"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; psql "$admin" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"; rm -rf "$work"' EXIT
printf '[rate_limit]\nenabled = false\n' > "$work/bench.toml"
"$bin/vinr" serve --listen 127.0.0.1:0 --database-url "$url" --config "$work/bench.toml" \
    > "$work/out.txt" 2> "$work/err.txt" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/out.txt" && break; sleep 0.05; done
api="$(grep -o 'http://[0-9.:]*' "$work/out.txt" | head -1)"
key="$(grep -o 'sk_test_[A-Za-z0-9]*' "$work/out.txt" | head -1)"

echo "== machine: $(nproc) cores, $(psql "$admin" -tAc 'SHOW server_version'), synchronous_commit=$(psql "$admin" -tAc 'SHOW synchronous_commit')"
"$bin/vinr-bench" --url "$api" --key "$key" --scenario suite --connections "$connections" \
    --duration "$duration" --warmup 2s

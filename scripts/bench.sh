#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md: a release build of `vinr serve` on a fresh database
# (rate limits off, every commit fsync'd as always) and `vinr-bench` against it, from the same
# machine. SQLite by default; VINR_BENCH_POSTGRES=<admin URL> runs it on a fresh PostgreSQL
# database instead (scripts/lib/server.sh).
# Usage: scripts/bench.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
duration="${1:-10s}"
connections="${2:-64}"
cargo build --release --locked -p vinr-server -p vinr-bench
trap stop_server EXIT
start_server "$release/vinr"

echo "== machine: $(machine)"
echo "== closed loop suite ($connections connections, $duration each)"
"$release/vinr-bench" --url "$url" --key "$key" --scenario suite --connections "$connections" \
    --duration "$duration" --warmup 2s
for rate in 2000 5000 10000; do
    echo "== fixed arrival rate: create at $rate/s"
    "$release/vinr-bench" --url "$url" --key "$key" --scenario create --rate "$rate" \
        --connections 256 --duration "$duration" || true
done
echo "== server resident memory after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"

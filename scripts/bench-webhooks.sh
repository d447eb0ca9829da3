#!/usr/bin/env bash
# The webhook benchmark of BENCHMARKS.md: a release build of `vinr serve` on a fresh database
# (rate limits off, every commit fsync'd) and `vinr-bench --scenario webhooks`, whose in-process
# receiver is registered for `payment.created`: commit (the create's 2xx) to first delivery
# attempt, and deliveries per second, closed loop and at fixed rates; then the drain rate of a
# backlog (delivery alone, see crates/vinr-bench/src/webhooks.rs).
# SQLite by default; VINR_BENCH_POSTGRES=<admin URL> runs it on a fresh PostgreSQL database.
# Usage: scripts/bench-webhooks.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
duration="${1:-10s}"
connections="${2:-64}"
cargo build --release --locked -p vinr-server -p vinr-bench
trap stop_server EXIT
start_server "$release/vinr"

echo "== machine: $(machine)"
echo "== webhooks, closed loop ($connections connections, $duration)"
"$release/vinr-bench" --url "$url" --key "$key" --scenario webhooks --connections "$connections" \
    --duration "$duration" --prepare 20000 || true
for rate in 1000 2000 5000; do
    echo "== webhooks, fixed arrival rate: create at $rate/s"
    "$release/vinr-bench" --url "$url" --key "$key" --scenario webhooks --rate "$rate" \
        --connections 256 --duration "$duration" --prepare 0 || true
done
echo "== server resident memory after the run: $(awk '/VmRSS|RssAnon|RssFile/ {printf "%s %s %s  ", $1, $2, $3}' /proc/$server/status)"

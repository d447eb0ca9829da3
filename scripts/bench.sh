#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md: a release build of `vinr serve` on a fresh database
# (rate limits off, every commit fsync'd as always) and `vinr-bench` against it, from the same
# machine. SQLite by default; VINR_BENCH_POSTGRES=<admin URL> runs it on a fresh PostgreSQL
# database instead (scripts/lib/server.sh). Every run reports the server's CPU µs per request
# (`--server-pid`). VINR_BENCH_PLOT=FILE.svg also draws the closed-loop suite (`--plot`).
# VINR_BENCH_BIN_DIR=DIR uses the binaries in DIR instead of building release ones (CI's short
# form: the debug builds it already has).
# Exit status: non-zero when any request of the closed-loop suite failed (vinr-bench exits 2);
# the fixed-rate runs only report a missed rate or their errors, since a debug build may not
# keep up.
# Usage: scripts/bench.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
duration="${1:-10s}"
connections="${2:-64}"
plot=()
[[ -n "${VINR_BENCH_PLOT:-}" ]] && plot=(--plot "$VINR_BENCH_PLOT")
build_bins -p vinr-server -p vinr-bench
trap stop_server EXIT
start_server "$bin_dir/vinr"

echo "== machine: $(machine)"
echo "== closed loop suite ($connections connections, $duration each)"
"$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" --scenario suite \
    --connections "$connections" --duration "$duration" --warmup 2s "${plot[@]}"
for rate in 2000 5000 10000; do
    echo "== fixed arrival rate: create at $rate/s"
    "$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" --scenario create \
        --rate "$rate" --connections 256 --duration "$duration" || true
done
echo "== server resident memory after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"

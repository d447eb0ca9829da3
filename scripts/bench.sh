#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md: a release build of `vinr serve` on a fresh SQLite file
# (rate limits off, every commit fsync'd as always) and `vinr-bench` against it, from the same
# machine. Usage: scripts/bench.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
connections="${2:-64}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vinr-target}"
cargo build --release --locked -p vinr-server -p vinr-bench
bin="$CARGO_TARGET_DIR/release"

work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[rate_limit]\nenabled = false\n' > "$work/bench.toml"
"$bin/vinr" serve --listen 127.0.0.1:0 --database-url "sqlite://$work/vinr.db" \
    --config "$work/bench.toml" > "$work/out.txt" 2> "$work/err.txt" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/out.txt" && break; sleep 0.05; done
url="$(grep -o 'http://[0-9.:]*' "$work/out.txt" | head -1)"
key="$(grep -o 'sk_test_[A-Za-z0-9]*' "$work/out.txt" | head -1)"

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "== closed loop suite ($connections connections, $duration each)"
"$bin/vinr-bench" --url "$url" --key "$key" --scenario suite --connections "$connections" \
    --duration "$duration" --warmup 2s
for rate in 2000 5000 10000; do
    echo "== fixed arrival rate: create at $rate/s"
    "$bin/vinr-bench" --url "$url" --key "$key" --scenario create --rate "$rate" \
        --connections 256 --duration "$duration" || true
done
echo "== server resident memory after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"

#!/usr/bin/env bash
# The webhook benchmark of BENCHMARKS.md: a release build of `vinr serve` on a fresh SQLite file
# (rate limits off, every commit fsync'd) and `vinr-bench --scenario webhooks`, whose in-process
# receiver is registered for `payment.created`: commit (the create's 2xx) to first delivery
# attempt, and deliveries per second, closed loop and at fixed rates; then the drain rate of a
# backlog (delivery alone, see crates/vinr-bench/src/webhooks.rs).
# Usage: scripts/bench-webhooks.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
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
for _ in $(seq 100); do grep -qs 'listening on' "$work/out.txt" && break; sleep 0.05; done
url="$(grep -o 'http://[0-9.:]*' "$work/out.txt" | head -1)"
key="$(grep -o 'sk_test_[A-Za-z0-9]*' "$work/out.txt" | head -1)"

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "== webhooks, closed loop ($connections connections, $duration)"
"$bin/vinr-bench" --url "$url" --key "$key" --scenario webhooks --connections "$connections" \
    --duration "$duration" --prepare 20000 || true
for rate in 1000 2000 5000; do
    echo "== webhooks, fixed arrival rate: create at $rate/s"
    "$bin/vinr-bench" --url "$url" --key "$key" --scenario webhooks --rate "$rate" \
        --connections 256 --duration "$duration" --prepare 0 || true
done
echo "== server resident memory after the run: $(awk '/VmRSS|RssAnon|RssFile/ {printf "%s %s %s  ", $1, $2, $3}' /proc/$server/status)"

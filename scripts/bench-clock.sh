#!/usr/bin/env bash
# How long `POST /v1/test_helpers/clock/advance` takes to move an account's test clock a year
# over the due work of N × 3 payments (N open checkouts, N uncaptured authorizations, N
# captured payments, made a second apart on the account's clock, so their due instants are
# distinct), with the test settlement schedule on (every 5 minutes). A release `vinr` on a
# fresh database (SQLite; VINR_BENCH_POSTGRES=<admin URL> for PostgreSQL). Checks afterwards
# that every checkout expired, every authorization was cancelled and every capture settled.
# Usage: scripts/bench-clock.sh [N]   (default 700: 2 100 payments)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
n="${1:-700}"
cargo build --release --locked -p vinr-server
SERVER_CONFIG_EXTRA=$'[settlements]\ntest_schedule = "interval"\n'
trap stop_server EXIT
start_server "$release/vinr"
api="$url/v1"
post() { curl -sS --fail-with-body -X POST "$api$1" -H "Authorization: Bearer $key" "${@:2}"; }
echo "== machine: $(machine)"
echo "== making $((3 * n)) payments"
for _ in $(seq "$n"); do
    post /payments -d amount=1000 -d currency=EUR -d returnUrl=https://shop.example/r >/dev/null
    auth=$(post /payments -d amount=1000 -d currency=EUR -d capture=false \
        -d returnUrl=https://shop.example/r | jq -r .id)
    post "/test_helpers/payments/$auth/pay" -d card=4242424242424242 >/dev/null
    paid=$(post /payments -d amount=1000 -d currency=EUR -d returnUrl=https://shop.example/r | jq -r .id)
    post "/test_helpers/payments/$paid/pay" -d card=4242424242424242 >/dev/null
    post /test_helpers/clock/advance -d seconds=1 >/dev/null
done
echo "== advancing a year"
started=$(date +%s.%N)
post /test_helpers/clock/advance -d seconds=$((365 * 86400)) >/dev/null
ended=$(date +%s.%N)
count() { curl -sS "$api/payments?status=$1&limit=100" -H "Authorization: Bearer $key" | jq '.data | length'; }
settled=$(curl -sS "$api/settlements?limit=100" -H "Authorization: Bearer $key" |
    jq '[.data[] | select(.status == "paid") | .gross] | add')
echo "advanced a year over $((3 * n)) payments in $(echo "$ended - $started" | bc -l | xargs printf '%.2f') s"
echo "  first page: $(count expired) expired, $(count cancelled) cancelled, $(count completed) completed; settled gross $settled (want $((n * 1000)))"
[[ "$settled" == "$((n * 1000))" ]] || { echo "not every capture was settled" >&2; exit 1; }

#!/usr/bin/env bash
# A merchant's CI job against the VINR sandbox, from start to finish: start the server with a
# fixed test key and platform key (nothing is read from its output), wait until it is ready,
# give each parallel test worker an account of its own, reset it between tests, and move its
# test clock to see a checkout expire, an authorization cancelled 7 days on, and a capture
# settled and paid out. Every step checks its answer; the first wrong one fails the job.
#
#   examples/ci/test-integration.sh [path/to/vinr]     (default: builds it with cargo)
#
# This repository's CI (.ci/run) runs this very script, so it cannot rot. Needs curl and jq.
set -euo pipefail

vinr="${1:-}"
if [ -z "$vinr" ]; then
    cargo build --release --bin vinr
    vinr="${CARGO_TARGET_DIR:-target}/release/vinr"
fi
workers="${VINR_EXAMPLE_WORKERS:-3}"
port="${VINR_EXAMPLE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
api="http://127.0.0.1:$port/v1"

# Secrets a CI system would hold (any value of the right shape: sk_test_ + 32..128 letters and
# digits; plk_ + at least 32 of A-Z a-z 0-9 _ -).
export VINR_SANDBOX_SECRET_KEY="sk_test_ci0123456789abcdefghijklmnopqrstuv"
export VINR_PLATFORM_KEY="plk_ci_0123456789abcdefghijklmnopqrstuv"

# 1. Start the server on a database of its own, in the background; stop it when the job ends.
work="$(mktemp -d)"
"$vinr" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/vinr.db" \
    >"$work/vinr.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

# 2. Wait until it answers (`/readyz`: the database is reachable), at most 30 s.
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/vinr.log"; exit 1; }
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null

fail() { echo "FAILED ($1): $2" >&2; exit 1; }

# The fixed sandbox key works from the first request: no need to read it from the log.
[ "$(curl -sS --fail-with-body "$api/account" -H "Authorization: Bearer $VINR_SANDBOX_SECRET_KEY" |
    jq -r .livemode)" = false ] || fail setup "the sandbox key is not the one given"

# A POST with the worker's key, form fields as the remaining arguments; a GET. An error answer
# is printed (its body names the problem) and fails the worker.
post() {
    local path=$1 fields=()
    shift
    for field in "$@"; do fields+=(--data-urlencode "$field"); done
    curl -sS --fail-with-body -X POST "$api$path" -H "Authorization: Bearer $key" "${fields[@]}"
}
get() { curl -sS --fail-with-body "$api$1" -H "Authorization: Bearer $key"; }
expect() { # expect WHAT ACTUAL WANTED
    [ "$2" = "$3" ] || fail "$worker" "$1: got '$2', wanted '$3'"
}

# One parallel test worker: its own account, three tests, a reset before each.
run_worker() {
    worker=$1
    # The platform key makes a throwaway account; its sk_test_ key is in the answer, once.
    key=$(curl -sS --fail-with-body "$api/accounts" -H "Authorization: Bearer $VINR_PLATFORM_KEY" \
        -d name="CI worker $worker" | jq -r .secretKey)
    [[ $key == sk_test_* ]] || fail "$worker" "no key for the account"

    # Test 1: an unfinished checkout expires after an hour.
    post /test_helpers/reset >/dev/null
    pay=$(post /payments amount=1000 currency=EUR returnUrl=https://shop.example/return | jq -r .id)
    post /test_helpers/clock/advance seconds=3660 >/dev/null
    expect "checkout after 61 min" "$(get "/payments/$pay" | jq -r .status)" expired
    expect "its last event" "$(get "/events?limit=1" | jq -r '.data[0].type')" payment.expired

    # Test 2: an authorization that is never captured is cancelled 7 days on. The reset
    # leaves nothing of test 1 behind.
    post /test_helpers/reset >/dev/null
    expect "payments after a reset" "$(get /payments | jq '.data | length')" 0
    pay=$(post /payments amount=2500 currency=EUR capture=false \
        returnUrl=https://shop.example/return | jq -r .id)
    expect "authorized" "$(post "/test_helpers/payments/$pay/pay" card=4242424242424242 | jq -r .status)" authorized
    post /test_helpers/clock/advance seconds=$((7 * 86400 + 60)) >/dev/null
    expect "authorization after 7 days" "$(get "/payments/$pay" | jq -r .status)" cancelled

    # Test 3: a captured payment is settled and paid out when its period ends (every 5
    # minutes in test mode): 1000 less the 1.4 % + 25 card fee is 961.
    post /test_helpers/reset >/dev/null
    pay=$(post /payments amount=1000 currency=EUR returnUrl=https://shop.example/return | jq -r .id)
    expect "paid" "$(post "/test_helpers/payments/$pay/pay" card=4242424242424242 | jq -r .status)" completed
    post /test_helpers/clock/advance seconds=600 >/dev/null
    settlement=$(get /settlements)
    expect "settlements" "$(jq '.data | length' <<<"$settlement")" 1
    expect "settlement status" "$(jq -r '.data[0].status' <<<"$settlement")" paid
    expect "settlement net" "$(jq '.data[0].net' <<<"$settlement")" 961
    echo "worker $worker: 3 tests passed"
}

# 3. The workers run at once, each on its own account, never seeing each other.
pids=()
for n in $(seq "$workers"); do
    run_worker "$n" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || { echo "--- server log"; tail -40 "$work/vinr.log"; exit 1; }
echo "all $workers workers passed"

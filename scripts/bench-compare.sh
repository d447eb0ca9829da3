#!/usr/bin/env bash
# A/B of two server builds on this machine: runs one vinr-bench scenario against each binary
# in turn (a fresh database each time, rate limits off), TRIES times, so the VM's drift falls
# on both alike. SQLite by default; VINR_BENCH_POSTGRES=<admin URL> uses a fresh PostgreSQL
# database per run (scripts/lib/server.sh). Build the old one from another checkout first, e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \
#       cargo build --release -p vinr-server)
# Usage: scripts/bench-compare.sh OLD_VINR NEW_VINR [TRIES] [DURATION] [SCENARIO]
#   (defaults: 2, 10s, suite; `webhooks` runs its closed loop with a 20 000-event backlog drain)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
old="$1"
new="$2"
tries="${3:-2}"
duration="${4:-10s}"
scenario="${5:-suite}"
cargo build --release --locked -p vinr-bench
trap stop_server EXIT

run() {
    start_server "$1"
    case "$scenario" in
        suite)
            "$release/vinr-bench" --url "$url" --key "$key" --scenario suite --connections 64 \
                --duration "$duration" --warmup 2s 2>/dev/null | sed -n '/suite summary/,$p' ;;
        webhooks)
            "$release/vinr-bench" --url "$url" --key "$key" --scenario webhooks --connections 64 \
                --duration "$duration" --prepare 20000 2>/dev/null ;;
        *)
            "$release/vinr-bench" --url "$url" --key "$key" --scenario "$scenario" \
                --connections 64 --duration "$duration" 2>/dev/null ;;
    esac
    echo "  memory: $(grep -E 'VmRSS|RssAnon|RssFile' "/proc/$server/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
    stop_server
}

echo "== machine: $(machine)"
for try in $(seq "$tries"); do
    echo "== old ($old), try $try"
    run "$old"
    echo "== new ($new), try $try"
    run "$new"
done

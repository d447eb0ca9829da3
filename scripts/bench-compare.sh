#!/usr/bin/env bash
# A/B of two server builds on this machine: runs the closed-loop suite of scripts/bench.sh
# against each binary in turn (fresh SQLite file each time, rate limits off), TRIES times, so
# the VM's drift falls on both alike. Build the old one from another checkout first, e.g.
#   git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \
#       cargo build --release -p vinr-server)
# Usage: scripts/bench-compare.sh OLD_VINR NEW_VINR [TRIES] [DURATION]   (defaults: 2, 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1"
new="$2"
tries="${3:-2}"
duration="${4:-10s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vinr-target}"
cargo build --release --locked -p vinr-bench
bench="$CARGO_TARGET_DIR/release/vinr-bench"

suite() {
    local bin="$1" work server url key
    work="$(mktemp -d)"
    printf '[rate_limit]\nenabled = false\n' > "$work/bench.toml"
    "$bin" serve --listen 127.0.0.1:0 --database-url "sqlite://$work/vinr.db" \
        --config "$work/bench.toml" > "$work/out.txt" 2> "$work/err.txt" &
    server=$!
    for _ in $(seq 100); do grep -qs 'listening on' "$work/out.txt" && break; sleep 0.05; done
    url="$(grep -o 'http://[0-9.:]*' "$work/out.txt" | head -1)"
    key="$(grep -o 'sk_test_[A-Za-z0-9]*' "$work/out.txt" | head -1)"
    "$bench" --url "$url" --key "$key" --scenario suite --connections 64 \
        --duration "$duration" --warmup 2s 2>/dev/null | sed -n '/suite summary/,$p'
    echo "  memory: $(grep -E 'VmRSS|RssAnon|RssFile' "/proc/$server/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
    kill "$server"
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}

for try in $(seq "$tries"); do
    echo "== old ($old), try $try"
    suite "$old"
    echo "== new ($new), try $try"
    suite "$new"
done

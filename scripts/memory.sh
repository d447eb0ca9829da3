#!/usr/bin/env bash
# The memory measurement of RELIABILITY.md (SPEC §2: memory stays flat whether or not anyone
# scrapes /metrics): a release `vinr serve` on a fresh database (rate limits off) takes
# MILLIONS million requests from `vinr-bench` — healthz, create, get and mixed
# (create → pay → capture → refund → get) in turn, 5 s each — and nobody ever scrapes /metrics.
# The server's VmRSS (/proc/PID/status) is printed at the start and after every million, split
# into RssAnon (the heap: what a leak would grow) and RssFile (file pages mapped into the
# process: the binary, and on SQLite the database file, read through mmap up to the store's
# `mmap_size` of 32 MiB, so it grows with the database until that bound). On PostgreSQL
# (VINR_BENCH_POSTGRES) nothing but the binary is mapped.
# Usage: scripts/memory.sh [MILLIONS] [BIN]   (defaults: 5, the release vinr built here)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
millions="${1:-5}"
bin="${2:-}"
if [[ -z "$bin" ]]; then
    cargo build --release --locked -p vinr-server -p vinr-bench
    bin="$release/vinr"
fi
trap stop_server EXIT
start_server "$bin"
memory() {
    awk '/^(VmRSS|RssAnon|RssFile):/ {kb[$1] = $2}
        END {printf "%10d  %10d  %10d", kb["VmRSS:"], kb["RssAnon:"], kb["RssFile:"]}' \
        "/proc/$server/status"
}

echo "== machine: $(machine); server $bin"
printf '%10s  %10s  %10s  %10s  %s\n' requests "VmRSS kB" "RssAnon kB" "RssFile kB" elapsed
started=$SECONDS
printf '%10d  %s  %ds\n' 0 "$(memory)" 0
total=0
for million in $(seq "$millions"); do
    while (( total < million * 1000000 )); do
        for scenario in healthz create get mixed; do
            # Exit code 2 means some request failed: counted and reported, not fatal here.
            "$release/vinr-bench" --url "$url" --key "$key" --scenario "$scenario" \
                --connections 32 --duration 5s --prepare 200 --json \
                > "$work/bench.json" 2> "$work/bench.txt" || true
            done_now="$(jq -r '.requests' "$work/bench.json")"
            errors="$(jq -r '.errors' "$work/bench.json")"
            (( errors == 0 )) || echo "   $scenario: $errors of $done_now requests failed" >&2
            total=$(( total + done_now ))
        done
    done
    printf '%10d  %s  %ds\n' "$total" "$(memory)" $(( SECONDS - started ))
done

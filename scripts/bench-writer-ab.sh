#!/usr/bin/env bash
# A/B of SQLite create cost: for each binary in turn (TRIES rounds, alternated, a fresh
# database each time, rate limits off), an 8 s create closed loop at 64 connections, printing
# ok/s, the server's CPU per request (vinr-bench --server-pid) and the CPU per request of the
# SQLite writer thread alone (`vinr-sqlite-wri…` in /proc/PID/task, over 6 s of the loop) — the
# thread that bounds the create, and a figure that moves less than the rate on a shared VM.
# Usage: scripts/bench-writer-ab.sh TRIES VINR_A VINR_B ...
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
tries="${1:?usage: scripts/bench-writer-ab.sh TRIES VINR_A VINR_B ...}"
shift
build_bins -p vinr-bench
trap stop_server EXIT
out="$(mktemp)"
writer_ticks() {
    local total=0 task
    for task in /proc/"$server"/task/*; do
        grep -qs 'sqlite-wri' "$task/comm" || continue
        total=$((total + $(cut -d')' -f2- "$task/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
echo "== machine: $(machine)"
for _ in $(seq "$tries"); do
    for bin in "$@"; do
        start_server "$bin"
        "$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" --scenario create \
            --connections 64 --duration 8s --warmup 1s > "$out" 2> /dev/null &
        load=$!
        sleep 2
        before="$(writer_ticks)"
        sleep 6
        after="$(writer_ticks)"
        wait "$load"
        rate="$(grep -m1 -oE '[0-9.]+ ok/s' "$out" | cut -d' ' -f1)"
        cpu="$(grep -oE 'server CPU +[0-9.]+' "$out" | grep -oE '[0-9.]+$')"
        awk -v b="$bin" -v r="$rate" -v c="$cpu" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
            printf "%-32s create %8.1f ok/s  server %6.1f µs/req  writer thread %6.1f µs/req\n",
                b, r, c, t * 1e6 / (hz * 6 * r) }'
        stop_server
    done
done
rm -f "$out"

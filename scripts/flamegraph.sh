#!/usr/bin/env bash
# A CPU flame graph of `vinr serve` under one vinr-bench scenario: a release server on a fresh
# SQLite file (rate limits off, as scripts/bench.sh), a closed loop of SCENARIO against it, and
# `perf record -F 999 -g --call-graph dwarf` on the server's pid for the measured window only
# (not the warmup, nor `get`'s preparation), rendered with inferno. The release profile keeps
# line tables (`debug = 1`), which is what DWARF unwinding and the frame names need.
# inferno-collapse-perf / inferno-flamegraph are taken from PATH, or installed with
# `cargo install inferno --locked` into the cache (VINR_BENCH_CACHE, default ~/.cache/vinr-bench).
# VINR_BENCH_BIN_DIR and VINR_BENCH_POSTGRES as in scripts/bench.sh.
# Usage: scripts/flamegraph.sh SCENARIO OUT.svg [SECONDS] [CONNECTIONS]   (defaults: 10, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
scenario="${1:?usage: scripts/flamegraph.sh SCENARIO OUT.svg [SECONDS] [CONNECTIONS]}"
out="${2:?usage: scripts/flamegraph.sh SCENARIO OUT.svg [SECONDS] [CONNECTIONS]}"
seconds="${3:-10}"
connections="${4:-64}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    inferno_bin="$(dirname "$(command -v inferno-flamegraph)")"
else
    inferno_bin="$bench_cache/inferno/bin"
    if [[ ! -x "$inferno_bin/inferno-flamegraph" || ! -x "$inferno_bin/inferno-collapse-perf" ]]; then
        echo "== installing inferno into $bench_cache/inferno"
        cargo install inferno --locked --root "$bench_cache/inferno"
    fi
fi
build_bins -p vinr-server -p vinr-bench

perf_dir="$(mktemp -d)"
stop_all() {
    [[ -n "${bench_pid:-}" ]] && { kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; }
    stop_server
    rm -rf "$perf_dir"
}
trap stop_all EXIT
start_server "$bin_dir/vinr"

# The load runs a little longer than perf records, so every sample is taken under load.
"$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" --scenario "$scenario" \
    --connections "$connections" --warmup 1s --duration "$((seconds + 2))s" \
    > "$perf_dir/bench.txt" 2> "$perf_dir/bench.err" &
bench_pid=$!
for _ in $(seq 600); do
    grep -qs 'vinr-bench: running' "$perf_dir/bench.err" && break
    kill -0 "$bench_pid" 2>/dev/null || { cat "$perf_dir/bench.err" >&2; exit 1; }
    sleep 0.1
done
sleep 1 # the warmup
echo "== perf record on the server (pid $server) for ${seconds}s of $scenario"
perf record -F 999 -g --call-graph dwarf -p "$server" -o "$perf_dir/perf.data" \
    -- sleep "$seconds" 2> "$perf_dir/perf.err" \
    || { cat "$perf_dir/perf.err" >&2; exit 1; }
wait "$bench_pid" || { cat "$perf_dir/bench.txt" "$perf_dir/bench.err" >&2; exit 1; }
bench_pid=""
sed -n '/^==/,$p' "$perf_dir/bench.txt"
perf script -i "$perf_dir/perf.data" 2> /dev/null | "$inferno_bin/inferno-collapse-perf" > "$perf_dir/folded"
# Frames under 0.05% of the samples are left out, which keeps the SVG within ~1 MB.
"$inferno_bin/inferno-flamegraph" --minwidth "${VINR_FLAME_MINWIDTH:-0.05}" --title "vinr serve: $scenario ($connections connections, ${seconds}s, SQLite)" \
    < "$perf_dir/folded" > "$out"
echo "== flame graph: $out ($(du -h "$out" | cut -f1), $(wc -l < "$perf_dir/folded") distinct stacks)"

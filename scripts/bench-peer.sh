#!/usr/bin/env bash
# Our create beside a peer's, in one vinr-bench run: `vinr serve` (release, fresh SQLite file,
# rate limits off, as scripts/bench.sh) and localstripe, a Stripe mock in Python, on this
# machine. The run sends healthz and create to ours, then POST /v1/payment_intents
# (`amount=1000&currency=eur&payment_method_types[]=card`) to localstripe, with the same
# connections, duration and warmup, and prints each report, the comparison table (ratios
# against our healthz) and both servers' CPU µs per request.
#
# localstripe is installed with pip into a venv under the cache (VINR_BENCH_CACHE, default
# ~/.cache/vinr-bench); a failed install fails the script. Mind what the peer does not do:
# it keeps everything in memory and re-pickles its whole store to /tmp/localstripe.pickle on
# every write (no fsync), so its rate falls as the run goes on (see `--plot`), and it has no
# idempotency. VINR_BENCH_BIN_DIR and VINR_BENCH_PLOT as in scripts/bench.sh.
# Usage: scripts/bench-peer.sh [DURATION] [CONNECTIONS]   (defaults: 10s, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
duration="${1:-10s}"
connections="${2:-64}"
localstripe_version="1.15.10"
plot=()
[[ -n "${VINR_BENCH_PLOT:-}" ]] && plot=(--plot "$VINR_BENCH_PLOT")

venv="$bench_cache/localstripe-$localstripe_version"
if ! "$venv/bin/localstripe" --help >/dev/null 2>&1; then
    echo "== installing localstripe $localstripe_version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "localstripe==$localstripe_version"
    "$venv/bin/localstripe" --help >/dev/null
fi
build_bins -p vinr-server -p vinr-bench

peer_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
peer_log="$(mktemp)"
"$venv/bin/localstripe" --port "$peer_port" --from-scratch > "$peer_log" 2>&1 &
peer=$!
stop_all() {
    stop_server
    kill "$peer" 2>/dev/null || true
    wait "$peer" 2>/dev/null || true
    rm -f "$peer_log"
}
trap stop_all EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$peer_port") 2>/dev/null && break
    kill -0 "$peer" 2>/dev/null || break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$peer_port") 2>/dev/null \
    || { echo "localstripe did not start on port $peer_port:" >&2; cat "$peer_log" >&2; exit 1; }
start_server "$bin_dir/vinr"

echo "== machine: $(machine); peer: localstripe $localstripe_version ($("$venv/bin/python" --version))"
echo "== ours (healthz, create), then localstripe (peer-create): $connections connections, $duration each"
"$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" \
    --peer "http://127.0.0.1:$peer_port" --peer-key sk_test_12345 --peer-pid "$peer" \
    --scenario peer --connections "$connections" --duration "$duration" --warmup 2s "${plot[@]}"

#!/usr/bin/env bash
# The slow-client measurement of RELIABILITY.md (SPEC §2 "Connections"): a release `vinr serve`
# (fresh database, default [http] limits: 10 s header timeout) is sent COUNT connections that
# never finish their request line, while `vinr-bench` measures /healthz at a fixed rate from
# new connections of its own; then it waits until the server has closed all COUNT, and prints
# when. The file limit of both the server and this script is raised to NOFILE first, so the
# cap (the limit less a quarter) stays above COUNT. Needs python3 (the slow clients).
# Usage: scripts/slow-clients.sh [COUNT] [BIN]   (defaults: 2000, the release vinr built here)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
count="${1:-2000}"
bin="${2:-}"
nofile="${VINR_SLOW_NOFILE:-8192}"
rate="${VINR_SLOW_RATE:-1000}"
if [[ -z "$bin" ]]; then
    cargo build --release --locked -p vinr-server -p vinr-bench
    bin="$release/vinr"
fi
ulimit -n "$nofile"
trap stop_server EXIT
start_server "$bin"
hostport="${url#http://}"
fds() { ls "/proc/$server/fd" | wc -l; }
bench() {
    "$release/vinr-bench" --url "$url" --scenario healthz --rate "$rate" --connections 16 \
        --duration 5s --warmup 1s
}

echo "== machine: $(machine); ulimit -n $nofile; server $bin"
echo "== /healthz at $rate/s, nobody else connected (server holds $(fds) descriptors)"
bench
echo "== $count connections that send 'GET /healthz HT' and then nothing"
python3 - "${hostport%:*}" "${hostport##*:}" "$count" > "$work/slow.txt" <<'PY' &
import selectors, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.monotonic()
sockets = []
for _ in range(count):
    s = socket.create_connection((host, port))
    s.sendall(b"GET /healthz HT")
    s.setblocking(False)
    sockets.append(s)
print(f"opened {count} half-open connections in {time.monotonic() - start:.2f} s", flush=True)
selector = selectors.DefaultSelector()
for s in sockets:
    selector.register(s, selectors.EVENT_READ)
closed, answered = [], 0
give_up = time.monotonic() + 120
while len(closed) < count and time.monotonic() < give_up:
    for key, _ in selector.select(timeout=1):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if data:
            answered += 1
            continue
        selector.unregister(key.fileobj)
        key.fileobj.close()
        closed.append(time.monotonic() - start)
closed.sort()
if closed:
    print(f"closed by the server: {len(closed)} of {count}, from {closed[0]:.2f} s to "
          f"{closed[-1]:.2f} s after the first was opened (median {closed[len(closed) // 2]:.2f} s)")
print(f"still open after {time.monotonic() - start:.0f} s: {count - len(closed)}; "
      f"connections that got any bytes back: {answered}")
PY
slow=$!
for _ in $(seq 600); do grep -qs '^opened' "$work/slow.txt" && break; sleep 0.05; done
cat "$work/slow.txt"
echo "== /healthz at $rate/s while they are held"
bench &
bench_pid=$!
sleep 3
echo "   (3 s in, the server holds $(fds) descriptors)"
wait "$bench_pid" || true
echo "== waiting for the server to close them (header timeout)"
wait "$slow"
tail -n +2 "$work/slow.txt"
echo "== afterwards the server holds $(fds) descriptors"

#!/usr/bin/env bash
# Where the time goes when `vinr serve` runs on PostgreSQL: a release server on a fresh
# PostgreSQL database (VINR_BENCH_POSTGRES, as in scripts/bench.sh), a closed loop of SCENARIO
# against it, and over SECONDS of the measured window:
#   - CPU by process (server, PostgreSQL's processes, load generator, the rest) from
#     `perf record -a` (all CPUs, no call graphs), as shares of the machine's samples;
#   - the CPU of every PostgreSQL process from /proc (utime + stime), per request;
#   - what PostgreSQL's client backends of that database are doing, sampled every 10 ms from
#     `pg_stat_activity` by one session: state (`active`, `idle in transaction` = waiting for
#     our next statement, `idle` = waiting for a request) and wait event (none = on CPU,
#     `Client:ClientRead`, the WAL flush of a commit `IO:WalSync` / `LWLock:WALWrite`, a
#     lock, …) — the shares say whether the database, the round trips or the disk bound it.
# Usage: VINR_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
#            scripts/pg-profile.sh SCENARIO [SECONDS] [CONNECTIONS]   (defaults: 10, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh
scenario="${1:?usage: scripts/pg-profile.sh SCENARIO [SECONDS] [CONNECTIONS]}"
seconds="${2:-10}"
connections="${3:-64}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 1; }
[[ -n "${VINR_BENCH_POSTGRES:-}" ]] || { echo "VINR_BENCH_POSTGRES must name the PostgreSQL admin URL" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
build_bins -p vinr-server -p vinr-bench

out_dir="$(mktemp -d)"
stop_all() {
    [[ -n "${bench_pid:-}" ]] && { kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; }
    [[ -n "${sampler_pid:-}" ]] && { kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; }
    stop_server
    rm -rf "$out_dir"
}
trap stop_all EXIT
start_server "$bin_dir/vinr"
db_url="${VINR_BENCH_POSTGRES%/*}/$pg_database"

# utime + stime, in clock ticks, of the bench database's backends and PostgreSQL's own
# background processes (WAL writer, checkpointer, …): not the backends of other databases.
postgres_ticks() {
    local total=0 pid fields
    for pid in $(psql "$VINR_BENCH_POSTGRES" -qAtc "SELECT pid FROM pg_stat_activity
            WHERE datname = '$pg_database' OR backend_type <> 'client backend'"); do
        fields="$(cut -d')' -f2- "/proc/$pid/stat" 2>/dev/null)" || continue
        # After the command: state is field 1, utime field 12, stime field 13.
        total=$((total + $(awk '{print $12 + $13}' <<< "$fields")))
    done
    echo "$total"
}

"$bin_dir/vinr-bench" --url "$url" --key "$key" --server-pid "$server" --scenario "$scenario" \
    --connections "$connections" --warmup 1s --duration "$((seconds + 2))s" \
    > "$out_dir/bench.txt" 2> "$out_dir/bench.err" &
bench_pid=$!
load_pid=$bench_pid
for _ in $(seq 600); do
    grep -qs 'vinr-bench: running' "$out_dir/bench.err" && break
    kill -0 "$bench_pid" 2>/dev/null || { cat "$out_dir/bench.err" >&2; exit 1; }
    sleep 0.1
done
sleep 1 # the warmup

# One sampling session; pg_stat_clear_snapshot() makes each read see the current states.
psql "$VINR_BENCH_POSTGRES" -qAt -F ' ' > "$out_dir/waits.txt" 2> "$out_dir/waits.err" <<SQL &
CREATE TEMP TABLE samples (what text);
DO \$\$
DECLARE stop timestamptz := clock_timestamp() + interval '$seconds seconds';
BEGIN
    WHILE clock_timestamp() < stop LOOP
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO samples
            SELECT state || ', ' || coalesce(wait_event_type || ':' || wait_event, 'on CPU')
            FROM pg_stat_activity
            WHERE datname = '$pg_database' AND backend_type = 'client backend';
        PERFORM pg_sleep(0.01);
    END LOOP;
END
\$\$;
SELECT round(100.0 * count(*) / sum(count(*)) OVER (), 1), what
    FROM samples GROUP BY what ORDER BY count(*) DESC;
SQL
sampler_pid=$!

# perf attributes samples to threads: the server's and the generator's thread ids.
server_tids="$(ls /proc/"$server"/task | tr '\n' ' ')"
bench_tids="$(ls /proc/"$load_pid"/task | tr '\n' ' ')"
ticks_before="$(postgres_ticks)"
echo "== perf record -a for ${seconds}s of $scenario on $(backend)"
perf record -a -F 499 -o "$out_dir/perf.data" -- sleep "$seconds" 2> "$out_dir/perf.err" \
    || { cat "$out_dir/perf.err" >&2; exit 1; }
ticks_after="$(postgres_ticks)"
wait "$sampler_pid" || { cat "$out_dir/waits.err" >&2; exit 1; }
sampler_pid=""
wait "$bench_pid" || { cat "$out_dir/bench.txt" "$out_dir/bench.err" >&2; exit 1; }
bench_pid=""

sed -n '/^==/,$p' "$out_dir/bench.txt"
rate="$(grep -m1 -oE '[0-9.]+ ok/s' "$out_dir/bench.txt" | cut -d' ' -f1)"
hz="$(getconf CLK_TCK)"
awk -v t=$((ticks_after - ticks_before)) -v hz="$hz" -v s="$seconds" -v r="${rate:-0}" 'BEGIN {
    cpu = t / hz
    printf "== PostgreSQL (the bench database'"'"'s backends and background processes): %.2f s of CPU in %d s = %.2f cores", cpu, s, cpu / s
    if (r > 0) printf ", %.0f µs per request at %.1f ok/s", cpu * 1e6 / (s * r), r
    printf "\n"
}'
echo "== CPU samples by process (perf record -a, all CPUs; idle = swapper)"
perf report -i "$out_dir/perf.data" --sort pid --stdio 2> /dev/null | grep -E '^ +[0-9.]+%' \
    | awk -v server="$server_tids" -v bench="$bench_tids" '{
        share = $1; sub("%", "", share); split($2, p, ":"); name = p[2]
        if (index(" " server " ", " " p[1] " ")) name = "vinr serve"
        else if (index(" " bench " ", " " p[1] " ")) name = "vinr-bench"
        else if (name != "postgres" && name != "swapper") name = "other"
        sum[name] += share
    } END { for (n in sum) printf "   %6.2f%%  %s\n", sum[n], n }' | sort -rn
echo "== PostgreSQL client backends of the bench database, sampled every 10 ms (% of samples)"
cat "$out_dir/waits.txt"
echo "== PostgreSQL's hottest functions (share of all samples; kernel = [k])"
perf report -i "$out_dir/perf.data" --comm postgres --sort dso,sym --stdio 2> /dev/null \
    | grep -E '^ +[0-9.]+%' | awk -v n="${VINR_PROFILE_SYMBOLS:-20}" 'NR <= n'

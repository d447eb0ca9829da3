# Sourced by the benchmark scripts. `start_server BIN` starts `BIN serve` (a release `vinr`) on
# a fresh database with rate limits off, waits until it listens, and sets $server (its pid),
# $url and $key; `stop_server` stops it and removes what it made. The database is a fresh
# SQLite file, or, when VINR_BENCH_POSTGRES holds an admin URL such as
# postgres://postgres@127.0.0.1:5432/test, a fresh database created on that server and dropped
# afterwards. Every acknowledged write is fsync'd either way. $SERVER_CONFIG_EXTRA, if set, is
# appended to the server's TOML configuration.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vinr-target}"
release="$CARGO_TARGET_DIR/release"

start_server() {
    local bin="$1" database_url
    work="$(mktemp -d)"
    database_url="sqlite://$work/vinr.db"
    if [[ -n "${VINR_BENCH_POSTGRES:-}" ]]; then
        pg_database="vinr_bench_$$_$RANDOM"
        psql "$VINR_BENCH_POSTGRES" -qc "CREATE DATABASE $pg_database"
        database_url="${VINR_BENCH_POSTGRES%/*}/$pg_database"
    fi
    printf '[rate_limit]\nenabled = false\n%s' "${SERVER_CONFIG_EXTRA:-}" > "$work/bench.toml"
    "$bin" serve --listen 127.0.0.1:0 --database-url "$database_url" \
        --config "$work/bench.toml" > "$work/out.txt" 2> "$work/err.txt" &
    server=$!
    for _ in $(seq 100); do grep -qs 'listening on' "$work/out.txt" && break; sleep 0.05; done
    url="$(grep -o 'http://[0-9.:]*' "$work/out.txt" | head -1)"
    key="$(grep -o 'sk_test_[A-Za-z0-9]*' "$work/out.txt" | head -1)"
    [[ -n "$url" && -n "$key" ]] || { cat "$work/err.txt" >&2; return 1; }
}

stop_server() {
    kill "${server:-}" 2>/dev/null || true
    wait "${server:-}" 2>/dev/null || true
    if [[ -n "${pg_database:-}" ]]; then
        psql "$VINR_BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)"
        pg_database=""
    fi
    rm -rf "${work:-}"
}

backend() {
    if [[ -n "${VINR_BENCH_POSTGRES:-}" ]]; then
        echo "PostgreSQL $(psql "$VINR_BENCH_POSTGRES" -tAc 'SHOW server_version'), synchronous_commit=$(psql "$VINR_BENCH_POSTGRES" -tAc 'SHOW synchronous_commit')"
    else
        echo "SQLite"
    fi
}

machine() {
    echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); $(backend)"
}

# Sourced by the benchmark scripts. `start_server BIN` starts `BIN serve` (a release `vinr`) on
# a fresh database with rate limits off, waits until it listens, and sets $server (its pid),
# $url and $key; `stop_server` stops it and removes what it made. The database is a fresh
# SQLite file, or, when VINR_BENCH_POSTGRES holds an admin URL such as
# postgres://postgres@127.0.0.1:5432/test, a fresh database created on that server and dropped
# afterwards. Every acknowledged write is fsync'd either way. $SERVER_CONFIG_EXTRA, if set, is
# appended to the server's TOML configuration.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/vinr-target}"
release="$CARGO_TARGET_DIR/release"
# Where the scripts take `vinr` and `vinr-bench` from: release builds made by `build_bins`, or,
# with VINR_BENCH_BIN_DIR set (CI: "$CARGO_TARGET_DIR/debug", already built), that directory
# as it is, without building anything.
bin_dir="${VINR_BENCH_BIN_DIR:-$release}"
# A cache for what the scripts install outside the build (localstripe's venv, inferno).
bench_cache="${VINR_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vinr-bench}"

# `build_bins -p PACKAGE...`: release builds of those packages, unless VINR_BENCH_BIN_DIR is set.
build_bins() {
    if [[ -n "${VINR_BENCH_BIN_DIR:-}" ]]; then
        echo "== binaries from $VINR_BENCH_BIN_DIR (VINR_BENCH_BIN_DIR), not building" >&2
    else
        cargo build --release --locked "$@"
    fi
}

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

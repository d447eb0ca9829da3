#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with Schemathesis (SPEC §8): every check,
# every operation, the examples, coverage, fuzzing and stateful (OpenAPI links) phases, at
# least 100 examples per operation, authenticated with the sandbox key of a fresh server.
# Exits non-zero on any failure. The checks' few state-dependent expectations are in
# scripts/schemathesis.toml, each with its reason.
#
#   scripts/schemathesis.sh [VINR_BINARY]
#
# Without a binary it builds the debug `vinr`. The database is a fresh SQLite file, or, when
# VINR_SCHEMATHESIS_POSTGRES holds an admin URL (postgres://postgres@127.0.0.1:5432/test), a
# fresh database created on that server for the run and dropped afterwards. Rate limits are
# off. Schemathesis is installed into a virtualenv under $CARGO_TARGET_DIR if missing.
# VINR_SCHEMATHESIS_EXAMPLES (default 100), VINR_SCHEMATHESIS_WORKERS (default 1: with two,
# CPython 3.11 compiling in both threads at once was seen to fail inside Hypothesis with
# "AST constructor recursion depth mismatch", a run error that is not the server's) and
# VINR_SCHEMATHESIS_SEED tune the run; the JUnit report goes to
# $CARGO_TARGET_DIR/schemathesis-report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

examples="${VINR_SCHEMATHESIS_EXAMPLES:-100}"
workers="${VINR_SCHEMATHESIS_WORKERS:-1}"
(( examples >= 100 )) || echo "note: $examples examples per operation (CI runs at least 100)" >&2

bin="${1:-}"
if [[ -z "$bin" ]]; then
    cargo build --quiet -p vinr-server --bin vinr
    bin="$CARGO_TARGET_DIR/debug/vinr"
fi

venv="$CARGO_TARGET_DIR/schemathesis-venv"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    python3 -m venv "$venv" || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

# The fuzzer registers webhook endpoints and the server delivers to them. This machine may send
# traffic to loopback only, so the run goes into a network namespace of its own that has
# nothing but loopback (as root, where `unshare` may): no delivery, not even a DNS lookup, can
# leave it. PostgreSQL is then reached through its Unix socket. The hooks also point every
# generated webhook URL at a closed loopback port, for runs where no namespace can be made.
if [[ -z "${VINR_SCHEMATHESIS_ISOLATED:-}" ]] && unshare -n true 2>/dev/null; then
    export VINR_SCHEMATHESIS_ISOLATED=1
    pg="${VINR_SCHEMATHESIS_POSTGRES:-}"
    socket_dir=/var/run/postgresql
    if [[ -n "$pg" ]]; then
        [[ -S "$socket_dir/.s.PGSQL.5432" ]] \
            || { echo "no PostgreSQL socket in $socket_dir for the isolated run" >&2; exit 1; }
        pg="$(sed -E 's#@(127\.0\.0\.1|localhost)(:|/)#@%2Fvar%2Frun%2Fpostgresql\2#' <<<"$pg")"
        export VINR_SCHEMATHESIS_POSTGRES="$pg"
    fi
    exec unshare -n bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$bin"
fi
[[ -n "${VINR_SCHEMATHESIS_ISOLATED:-}" ]] \
    || echo "note: no network namespace (needs root): webhook URLs are kept on loopback by the hooks" >&2

export VINR_BENCH_POSTGRES="${VINR_SCHEMATHESIS_POSTGRES:-}"
# Webhook attempts to the endpoints the fuzzer registers give up quickly, and retry once.
SERVER_CONFIG_EXTRA=$'[webhooks]\ntimeout_seconds = 2\nretry_schedule_seconds = [1]\n'
on_exit() {
    local status=$?
    if (( status != 0 )) && [[ -s "${work:-}/err.txt" ]]; then
        echo "--- server errors and warnings (last 40) ---" >&2
        grep -E 'ERROR|WARN' "$work/err.txt" | tail -40 >&2 || true
    fi
    stop_server
    exit "$status"
}
trap on_exit EXIT
start_server "$bin"

echo "$("$venv/bin/schemathesis" --version) against $url: $(backend), $examples examples per operation, $workers workers"
export VINR_SCHEMATHESIS_KEY="$key" PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
seed=()
[[ -n "${VINR_SCHEMATHESIS_SEED:-}" ]] && seed=(--seed "$VINR_SCHEMATHESIS_SEED")
started=$SECONDS
status=0
"$venv/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml run \
    "$url/v1/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$examples" \
    --workers "$workers" \
    --report junit --report-dir "$CARGO_TARGET_DIR/schemathesis-report" \
    "${seed[@]}" || status=$?
echo "schemathesis: exit $status after $(( SECONDS - started )) s"
exit "$status"

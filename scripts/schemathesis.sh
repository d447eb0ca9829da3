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
# VINR_SCHEMATHESIS_EXAMPLES (default 100), VINR_SCHEMATHESIS_WORKERS (default 2) and
# VINR_SCHEMATHESIS_SEED tune the run; the JUnit report goes to
# $CARGO_TARGET_DIR/schemathesis-report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/server.sh

examples="${VINR_SCHEMATHESIS_EXAMPLES:-100}"
workers="${VINR_SCHEMATHESIS_WORKERS:-2}"
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

#!/usr/bin/env bash
# The PostgreSQL figures of BENCHMARKS.md: scripts/bench.sh on a fresh database of the
# PostgreSQL server at ADMIN_URL.
# Usage: scripts/bench-postgres.sh [DURATION] [CONNECTIONS] [ADMIN_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
VINR_BENCH_POSTGRES="${3:-postgres://postgres@127.0.0.1:5432/test}" exec scripts/bench.sh "${1:-10s}" "${2:-64}"

#!/usr/bin/env bash
# Benchmarks the service on SQLite and PostgreSQL and writes bench/RESULTS.md.
#
#   bash bench/run.sh                      # both backends, 1,000 and 1,000,000 keys
#   bash bench/run.sh --backends sqlite    # see `python3 bench/bench.py --help` for options
#
# Needs: a Rust toolchain, python3, and for PostgreSQL a server at BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres; the script creates and drops a
# database `aak_bench` there). Installs wrk with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --quiet --bin admin-api-keys --example seed
exec python3 bench/bench.py "$@"

#!/usr/bin/env bash
# Benchmarks the service on SQLite and PostgreSQL. The report is printed and written to
# bench/results.local.md (ignored by git); the tracked bench/RESULTS.md is rewritten only with
# --update-results, when a run is meant to become the published numbers.
#
#   bash bench/run.sh                      # both backends, 1,000 and 1,000,000 keys
#   bash bench/run.sh --update-results     # the same, and write bench/RESULTS.md
#   bash bench/run.sh --backends sqlite    # see `python3 bench/bench.py --help` for options
#   bash bench/run.sh --callgrind          # also count instructions per request (callgrind)
#   bash bench/run.sh callgrind [options]  # only the counts; `python3 bench/callgrind.py --help`
#   bash bench/run.sh proxy [options]      # forward auth (direct, through nginx and Caddy), introspection
#
# Needs: a Rust toolchain, python3, and for PostgreSQL a server at BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres; the script creates and drops a
# database `aak_bench`, or `aak_callgrind` for the counts, there). Installs wrk, and valgrind
# for the counts, with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# install COMMAND PACKAGE: apt-get install PACKAGE unless COMMAND is on the PATH.
install() {
    if ! command -v "$1" >/dev/null; then
        echo "bench: installing $2" >&2
        SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq "$2" >/dev/null
    fi
}

# --update-results (anywhere) writes the tracked report; otherwise the local copy, unless the
# caller names an --output of their own.
update=false
args=()
for arg in "$@"; do
    if [ "$arg" = --update-results ]; then update=true; else args+=("$arg"); fi
done
set -- ${args[@]+"${args[@]}"}

driver=bench/bench.py
if [ "${1:-}" = callgrind ]; then
    shift
    driver=bench/callgrind.py
elif [ "${1:-}" = proxy ]; then
    shift
    driver=bench/proxy.py
    install wrk wrk
    install nginx nginx-light
    install caddy caddy
else
    install wrk wrk
fi
for arg in "$driver" "$@"; do
    case "$arg" in
        bench/callgrind.py | --callgrind) install valgrind valgrind ;;
    esac
done

output=()
case " $* " in
    *" --output "* | *" --output="*) ;;
    *)
        if [ "$driver" != bench/callgrind.py ]; then
            if $update; then
                output=(--output bench/RESULTS.md)
            else
                # proxy.py replaces its section of an existing report: start from the tracked one.
                local_report=bench/results.local.md
                if [ "$driver" = bench/proxy.py ] && [ ! -e "$local_report" ]; then
                    cp bench/RESULTS.md "$local_report"
                fi
                output=(--output "$local_report")
            fi
        fi
        ;;
esac

cargo build --release --quiet --bin admin-api-keys --example seed
exec python3 "$driver" "$@" ${output[@]+"${output[@]}"}

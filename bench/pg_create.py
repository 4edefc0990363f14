#!/usr/bin/env python3
"""Key creation on PostgreSQL against pgbench doing the same writes, interleaved.

Seeds 1,000 keys in a scratch database, starts the release binary on it (one HTTP worker
unless --workers, pinned to one core as in bench.py), then alternates, `--rounds` times:
`bench/pgbench_create.sh` (pgbench, the same number of clients, prepared statements, each
transaction one INSERT into admin_api_keys and one into audit_logs on the service's schema)
and wrk POSTing creates to the service with as many connections. It prints the medians and
their ratio (goal of issue 27: the service at least 0.8x pgbench).

    python3 bench/pg_create.py                 # after cargo build --release --bin admin-api-keys --example seed
    python3 bench/pg_create.py --rounds 5 --duration 10
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

import bench

RATIO_GOAL = 0.8


def pgbench(args):
    env = dict(os.environ, CLIENTS=str(args.connections), DURATION=str(args.duration),
               BENCH_DATABASE_URL=args.pg_url)
    output = subprocess.run(["bash", os.path.join(bench.ROOT, "bench", "pgbench_create.sh")],
                            env=env, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"^tps = ([\d.]+)", output, re.M).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="the service's HTTP workers")
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    if not os.path.exists(bench.BINARY) or not os.path.exists(bench.SEED):
        sys.exit("pg_create: no release build (cargo build --release --bin admin-api-keys "
                 "--example seed)")
    database = bench.Database("postgres", args.pg_url, name="aak_create_bench")
    try:
        key = bench.seed(database.url, 1000)
        server = bench.Server(database.url, workers=args.workers)
        try:
            url = server.base + bench.API
            bench.wrk(url, args, key, bench.CREATE_LUA, duration=1)  # warm-up
            service, reference, errors = [], [], 0
            for round_ in range(args.rounds):
                reference.append(pgbench(args))
                run = bench.wrk(url, args, key, bench.CREATE_LUA)
                service.append(run["rps"])
                errors += run["errors"]
                print(f"pg_create: round {round_ + 1}: pgbench {reference[-1]:,.0f} tps, "
                      f"service {service[-1]:,.0f} req/s (p99 {bench.fmt_ms(run['p99'])})",
                      file=sys.stderr)
        finally:
            server.stop()
    finally:
        database.drop()
    ours, theirs = statistics.median(service), statistics.median(reference)
    ratio = ours / theirs
    print(f"| create, {args.connections} connections, {args.workers} worker(s) | "
          f"{ours:,.0f} req/s | pgbench {theirs:,.0f} tps | {ratio:.2f}× | "
          f"goal ≥ {RATIO_GOAL}×: {'met' if ratio >= RATIO_GOAL else 'not met'} | "
          f"errors {errors} |")


if __name__ == "__main__":
    main()

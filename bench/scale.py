#!/usr/bin/env python3
"""Start-up, memory and verification throughput at 1,000 and 1,000,000 keys.

For each backend and table size it seeds a fresh database (bench/seed.rs), then starts the
release binary on it `--starts` times (one HTTP worker, pinned as in bench.py) and records:

  - start to ready: from spawning the process to the first 200 from /readyz;
  - start to the set of live key hashes loaded: the set loads in the background after the
    server is ready; polled on /metrics (`admin_api_keys_cache_entries{cache="live_hashes"}`);
  - resident memory once loaded and idle (VmRSS), and the peak (VmHWM) after
    `--duration` seconds of wrk on forward auth with a cached key (the steady state of a
    proxy's checks), then as many seconds of retrieve.

Instructions per check at both sizes (in the cache and out of it) are bench/callgrind.py's:
`python3 bench/callgrind.py --keys 1000000 --scenarios baseline,forward` and the same with
`AUTH_CACHE_TTL_SECS=0` in the environment.

    python3 bench/scale.py                       # after cargo build --release --bin admin-api-keys --example seed
    python3 bench/scale.py --backends sqlite --sizes 1000,1000000
"""

import argparse
import os
import statistics
import sys
import time

import bench

READY_GOAL_MS = 150
RSS_GOAL_MB = 64


def status_kb(process, field):
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run(backend, keys, args):
    database = bench.Database(backend, args.pg_url, name="aak_scale_bench")
    try:
        print(f"scale: {backend}: seeding {keys:,} keys", file=sys.stderr)
        key = bench.seed(database.url, keys)
        ready, loaded = [], []
        for start in range(args.starts):
            server = bench.Server(database.url)
            try:
                waited = bench.wait_key_set(server.base, keys, timeout=120, interval=0.002)
                ready.append(server.ready_ms)
                loaded.append(server.ready_ms + waited * 1000)
                if start < args.starts - 1:
                    continue
                time.sleep(1)
                idle_kb = status_kb(server.process, "VmRSS")
                forward = bench.wrk(server.base + "/v1/forward-auth", args, key)
                retrieve = bench.wrk(server.base + bench.API + "/" + bench.seeded_id(keys // 2),
                                     args, key)
                peak_kb = status_kb(server.process, "VmHWM")
            finally:
                server.stop()
        row = dict(backend=backend, keys=keys, ready=statistics.median(ready),
                   ready_max=max(ready), loaded=statistics.median(loaded), idle_kb=idle_kb,
                   peak_kb=peak_kb, forward=forward["rps"], retrieve=retrieve["rps"],
                   errors=forward["errors"] + retrieve["errors"])
        print(f"scale: {row}", file=sys.stderr)
        return row
    finally:
        database.drop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--starts", type=int, default=3, help="starts per size (default 3)")
    parser.add_argument("--duration", type=int, default=5,
                        help="seconds of each wrk load (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    if not os.path.exists(bench.BINARY) or not os.path.exists(bench.SEED):
        sys.exit("scale: no release build (cargo build --release --bin admin-api-keys "
                 "--example seed)")
    rows = [run(backend, int(size), args)
            for backend in args.backends.split(",") if backend
            for size in args.sizes.split(",") if size]
    print(f"| backend | keys | start to ready (median of {args.starts}; max) | "
          "set of live hashes loaded | RSS idle, loaded | peak RSS under load | "
          "forward auth req/s | retrieve req/s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['keys']:,} | {r['ready']:.0f} ms; {r['ready_max']:.0f} ms | "
              f"{r['loaded']:,.0f} ms | {r['idle_kb'] / 1024:.1f} MB | "
              f"{r['peak_kb'] / 1024:.1f} MB | {r['forward']:,.0f} | {r['retrieve']:,.0f} | "
              f"{r['errors']} |")
    for r in rows:
        if r["keys"] >= 1_000_000:
            print(f"\n{r['backend']} at {r['keys']:,} keys: start to ready ≤ {READY_GOAL_MS} ms "
                  f"{'met' if r['ready_max'] <= READY_GOAL_MS else 'not met'}; peak RSS ≤ "
                  f"{RSS_GOAL_MB} MB {'met' if r['peak_kb'] / 1024 <= RSS_GOAL_MB else 'not met'}")


if __name__ == "__main__":
    main()

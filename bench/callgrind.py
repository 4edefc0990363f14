#!/usr/bin/env python3
"""Counts the user-space instructions the server spends per request, with callgrind.

For each backend it seeds a fresh database (bench/seed.rs), starts the release binary with one
HTTP worker under `valgrind --tool=callgrind`, and for each scenario:

  1. sends a warm-up (caches, prepared statements, allocator pools settle);
  2. zeroes the counters (`callgrind_control -z`), sends N requests on a fresh keep-alive
     connection, dumps the counters (`callgrind_control -d`): I1;
  3. does the same with 6N requests: I6;
  4. reports (I6 - I1) / 5N.

The difference cancels what each phase pays once (connecting, the dump itself, timers that
fire), so what remains is the cost of one request. Requests go one at a time from this
process, whose own work is not counted: only the server runs under valgrind. Instruction
counts do not depend on the machine's load, so unlike the wrk numbers they compare well
across runs; repeated runs agree to within about 1%.

Scenarios run in this order: healthz, retrieve (one key, served from the cache), list first
page, list deep page, create, then the audit-log first page (after create, so that the page
is full of `api_key.created` events), then introspection of the caller's own cached key, then a forward-auth check of it,
then (SQLite only) a forward-auth check with a well-formed key that was never issued: its hash
is not in the set of live hashes, so it is answered 401 without a lookup. On PostgreSQL that
answer waits for the invalidation listener's next ping (see src/auth.rs), so the process is
mostly idle and the listener thread's own work would dominate the count.

Measuring starts once the server is ready and its set of live key hashes has loaded. Other
settings pass through the environment: `AUTH_CACHE_TTL_SECS=0` turns the key caches off, so
every check reads its key from the database (the set still says which hashes exist).

The server runs at `RUST_LOG=warn` (no access log) unless `BENCH_RUST_LOG` says otherwise:
`BENCH_RUST_LOG=info bash bench/run.sh callgrind ...` counts a request with its access line.
Usage flushing is pushed out to once an hour so that a
flush landing inside one phase and not the other does not add noise.

Run it through `bash bench/run.sh callgrind [options]` (which builds first and installs
valgrind when it is missing), or directly after a release build. `bench/bench.py --callgrind`
adds the table to bench/RESULTS.md. `--keep-dumps DIR` keeps every dump for
`callgrind_annotate --inclusive=yes DIR/<backend>-<scenario>-<n>.out`.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

import bench

AUDIT_PATH = "/v1/organization/audit_logs?limit=20"
CREATE_BODY = '{"name":"bench"}'
FORWARD_PATH = "/v1/forward-auth?permission=billing:read"
FORWARD_NAME = "forward auth GET /v1/forward-auth?permission=billing:read (a cached key)"
INVENTED_NAME = ("forward auth GET /v1/forward-auth?permission=billing:read (an invented "
                 "well-formed key: 401, hash not in the set)")
PROJECT_PATH = "/v1/forward-auth?project={PROJECT}"
PROJECT_NAME = ("forward auth GET /v1/forward-auth?project=<id> (a cached project key, member "
                "owned)")
# The model's limits (RATE_LIMIT_MODELS) are high enough that no phase is refused.
BENCH_MODEL = "bench-model"
MODEL_LIMITS = f"{BENCH_MODEL} rpm=1000000000 rpd=1000000000"
MODEL_PATH = f"/v1/forward-auth?model={BENCH_MODEL}"
MODEL_NAME = ("forward auth GET /v1/forward-auth?model=bench-model (a cached project key; one "
              "request taken from its per-minute and per-day budgets)")
# Scenarios that run on SQLite only (see the module docs).
SQLITE_ONLY = {"invented"}
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def invented_key():
    """A key with the prefix, length and checksum of an issued one (src/domain/secret.rs),
    that was never issued."""
    body = "sk-admin-" + "inventedbyTheBenchmark0123456789abcdefgh"
    n = zlib.crc32(body.encode())
    checksum = ""
    for _ in range(6):
        checksum = BASE62[n % 62] + checksum
        n //= 62
    return body + checksum


def plan(keys):
    """The scenarios, in the order they run, for a table of `keys` seeded keys, each
    (slug, name, method, path, body, authenticated). Slugs and names are bench.py's, so the
    two tables line up."""
    out = []
    for slug, name, path, kind in bench.scenarios(keys):
        if kind == "create":
            out.append((slug, name, "POST", path, CREATE_BODY, True))
        else:
            out.append((slug, name, "GET", path, None, kind is not None))
    out.append(("audit", "audit log first page, limit=20", "GET", AUDIT_PATH, None, True))
    # The caller introspects its own (cached) key: {KEY} is replaced by it.
    out.append(("introspect", "introspect POST /v1/introspect (a cached key)", "POST",
                "/v1/introspect", '{"token":"{KEY}"}', True))
    # A proxy's check of a cached key that holds the required permission.
    out.append(("forward", FORWARD_NAME, "GET", FORWARD_PATH, None, True))
    # The same check with a key that was never issued.
    out.append(("invented", INVENTED_NAME, "GET", FORWARD_PATH, None, "invented"))
    # A project key's check, pinned to its project ({PROJECT} is replaced by its id).
    out.append(("project", PROJECT_NAME, "GET", PROJECT_PATH, None, "project"))
    # The same key naming a model, so its per-model rate limit is taken.
    out.append(("model", MODEL_NAME, "GET", MODEL_PATH, None, "project"))
    return out


class CallgrindServer:
    """The release binary under callgrind, one HTTP worker, on `database_url`."""

    def __init__(self, database_url, work_dir, startup_timeout, keys):
        self.port = bench.free_port()
        self.keys = keys
        self.out = os.path.join(work_dir, "callgrind.out")
        self.parts = 0  # dumps taken so far; dump k is written to `<out>.k`
        # BENCH_RUST_LOG=info counts the access log too (the default level of a deployment).
        env = dict(os.environ, DATABASE_URL=database_url,
                   RUST_LOG=os.environ.get("BENCH_RUST_LOG", "warn"),
                   RATE_LIMIT_MODELS=MODEL_LIMITS)
        command = bench.pinned(bench.SERVER_CPU) + [
            "valgrind", "--tool=callgrind", "--trace-children=no",
            f"--callgrind-out-file={self.out}",
            f"--log-file={os.path.join(work_dir, 'valgrind.log')}",
            bench.BINARY,
            "--bind-addr", f"127.0.0.1:{self.port}",
            "--workers", "1",
            "--usage-flush-interval-secs", "3600",
        ]
        self.log = open(os.path.join(work_dir, "server.log"), "w")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=self.log)
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout):
        # Under valgrind the server starts about 50 times slower than natively.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.close()
                with open(self.log.name) as log:
                    tail = log.read()[-2000:]
                sys.exit(f"callgrind: the server exited with {self.process.returncode}:\n{tail}")
            if bench.http_status(f"http://127.0.0.1:{self.port}/readyz") == 200:
                # The set of live hashes loads in the background after start: let it finish
                # before anything is counted (at 1,000,000 keys that takes a while here).
                bench.wait_key_set(f"http://127.0.0.1:{self.port}", self.keys,
                                   timeout=max(1, deadline - time.monotonic()), interval=0.5)
                return
            time.sleep(0.2)
        self.stop()
        sys.exit(f"callgrind: the server was not ready after {timeout} s")

    def _control(self, flag):
        done = subprocess.run(["callgrind_control", flag, str(self.process.pid)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"callgrind: callgrind_control {flag} failed:\n{done.stdout}{done.stderr}")

    def zero(self):
        self._control("-z")

    def dump(self):
        """Writes the counters since the last zero to a file; returns (path, instructions)."""
        self._control("-d")
        self.parts += 1
        path = f"{self.out}.{self.parts}"
        with open(path) as dump:
            for line in dump:
                if line.startswith("totals:"):
                    return path, int(line.split()[1])
        sys.exit(f"callgrind: no totals line in {path}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def call(port, key, method, path, body=None):
    """One JSON request as `key` (setting up the project scenarios); the answer's body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body) if body else None,
                           headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read() or b"null")
        if response.status != 200:
            sys.exit(f"callgrind: setup {method} {path} answered {response.status}: {answer}")
        return answer
    finally:
        connection.close()


class ProjectKey:
    """A project with the bootstrap key's owner as a member, and a key of that member's, made
    through the API of the server under measurement."""

    def __init__(self, port, admin_key):
        org = "/v1/organization"
        self.project = call(port, admin_key, "POST", f"{org}/projects",
                            {"name": "bench"})["id"]
        owner = call(port, admin_key, "GET", f"{org}/users?limit=1")["data"][0]["id"]
        call(port, admin_key, "POST", f"{org}/projects/{self.project}/users",
             {"user_id": owner, "role": "member"})
        self.value = call(port, admin_key, "POST", f"{org}/projects/{self.project}/api_keys",
                          {"user_id": owner, "name": "bench"})["value"]


def send(port, scenario, key, count, project=None):
    """Sends `count` requests one after another on one keep-alive connection."""
    slug, _, method, path, body, authenticated = scenario
    headers = {}
    expected = 200
    if authenticated == "invented":
        key, expected = invented_key(), 401
    if authenticated == "project":
        key, path = project.value, path.replace("{PROJECT}", project.project)
    if authenticated:
        headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = body.replace("{KEY}", key)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(count):
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != expected:
                sys.exit(f"callgrind: {slug}: {method} {path} answered {response.status}")
    finally:
        connection.close()


def measure(server, scenario, key, args, keep_as, project=None):
    """Instructions per request of one scenario: (I(6N) - I(N)) / 5N, `args.repeats` times."""
    send(server.port, scenario, key, args.warmup, project)
    results = []
    for _ in range(args.repeats):
        totals = {}
        for count in (args.requests, 6 * args.requests):
            server.zero()
            send(server.port, scenario, key, count, project)
            # Let the server see the connection close before the counters are read.
            time.sleep(0.5)
            path, totals[count] = server.dump()
            if keep_as:
                shutil.move(path, f"{keep_as}-{count}.out")
            else:
                os.remove(path)
        results.append((totals[6 * args.requests] - totals[args.requests])
                       / (5 * args.requests))
    return results


def run_backend(backend, args):
    """Result rows for every scenario on one backend, on a database of its own."""
    database = bench.Database(backend, args.pg_url, name="aak_callgrind")
    rows = []
    try:
        print(f"callgrind: {backend}: seeding {args.keys:,} keys", file=sys.stderr)
        key = bench.seed(database.url, args.keys)
        with tempfile.TemporaryDirectory(prefix="aak-callgrind-") as work_dir:
            server = CallgrindServer(database.url, work_dir, args.startup_timeout, args.keys)
            try:
                project = None
                if not args.scenarios or {"project", "model"} & set(args.scenarios):
                    project = ProjectKey(server.port, key)
                for scenario in plan(args.keys):
                    slug, name = scenario[:2]
                    if args.scenarios and slug not in args.scenarios:
                        continue
                    if slug in SQLITE_ONLY and backend != "sqlite":
                        continue
                    keep_as = (os.path.join(args.keep_dumps, f"{backend}-{slug}")
                               if args.keep_dumps else None)
                    runs = measure(server, scenario, key, args, keep_as, project)
                    row = dict(backend=backend, slug=slug, scenario=name,
                               instructions=statistics.median(runs),
                               spread=(max(runs) - min(runs)) / statistics.median(runs))
                    print(f"callgrind: {backend} {name}: {row['instructions']:,.0f} "
                          f"instructions/request (runs: "
                          f"{', '.join(f'{r:,.0f}' for r in runs)})", file=sys.stderr)
                    rows.append(row)
            finally:
                server.stop()
    finally:
        database.drop()
    return rows


def markdown(rows, args):
    """The results as Markdown lines (a short description, then the table)."""
    out = [
        f"Instructions per request in user space (callgrind `Ir`), server process only, one "
        f"HTTP worker, {args.keys:,} keys seeded: (I({6 * args.requests}) − "
        f"I({args.requests})) / {5 * args.requests} on one keep-alive connection after "
        f"{args.warmup} warm-up requests; the median of {args.repeats} such "
        f"measurement{'s' if args.repeats != 1 else ''}, with the spread (max − min) / median. "
        "See `python3 bench/callgrind.py --help`.",
        "",
        "| backend | scenario | instructions/request | spread |",
        "|---|---|---:|---:|",
    ]
    for row in rows:
        out.append(f"| {row['backend']} | {row['scenario']} | {row['instructions']:,.0f} | "
                   f"{row['spread'] * 100:.1f}% |")
    return out


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres",
                   help="comma-separated: sqlite, postgres (default: both)")
    p.add_argument("--pg-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                   help="server for the PostgreSQL run (a database aak_callgrind is made "
                        "and dropped there)")
    p.add_argument("--keys", type=int, default=1000,
                   help="synthetic keys to seed (default 1000)")
    p.add_argument("--requests", type=int, default=200,
                   help="N: the phases send N and 6N requests (default 200)")
    p.add_argument("--warmup", type=int, default=100,
                   help="requests sent before measuring each scenario (default 100)")
    p.add_argument("--repeats", type=int, default=3,
                   help="measurements per scenario; the median is reported (default 3)")
    p.add_argument("--scenarios", default="",
                   help="comma-separated subset of: baseline, retrieve, first, deep, create, "
                        "audit, introspect, forward, invented, project, model (default: all)")
    p.add_argument("--keep-dumps", metavar="DIR",
                   help="keep the dumps of each scenario's last measurement in DIR as "
                        "<backend>-<scenario>-<requests>.out")
    p.add_argument("--startup-timeout", type=int, default=300,
                   help="seconds to wait for the server under valgrind (default 300)")
    return p


def parse(argv):
    """The options from `argv`; `parse([])` gives the defaults (bench.py uses that)."""
    args = parser().parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    known = [scenario[0] for scenario in plan(args.keys)]
    for slug in args.scenarios:
        if slug not in known:
            sys.exit(f"callgrind: no scenario {slug!r}; there are {', '.join(known)}")
    return args


def check_tools():
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit(f"callgrind: {tool} is missing; `bash bench/run.sh callgrind` installs it")
    if not os.path.exists(bench.BINARY) or not os.path.exists(bench.SEED):
        sys.exit("callgrind: no release build; run `bash bench/run.sh callgrind`")


def measure_all(args):
    """Rows for every backend in `args.backends`; the entry point bench.py uses."""
    check_tools()
    if args.keep_dumps:
        os.makedirs(args.keep_dumps, exist_ok=True)
    # The server under valgrind is pinned to bench.SERVER_CPU; keep this client off it.
    affinity = os.sched_getaffinity(0)
    if bench.pinned(bench.LOAD_CPU):
        os.sched_setaffinity(0, {bench.LOAD_CPU})
    try:
        rows = []
        for backend in args.backends:
            rows += run_backend(backend, args)
        return rows
    finally:
        os.sched_setaffinity(0, affinity)


def main():
    args = parse(sys.argv[1:])
    print("\n".join(markdown(measure_all(args), args)))


if __name__ == "__main__":
    main()

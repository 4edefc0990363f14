#!/usr/bin/env python3
"""Benchmark driver for admin-api-keys; run it through bench/run.sh, which builds first.

For each backend it starts the release binary with one HTTP worker on a fresh database,
seeds synthetic keys (bench/seed.rs), and loads each route with wrk (one thread, a fixed
number of connections) at two table sizes. It prints a Markdown report (requests/s, p50/p99
latency, the ratios the targets are stated in, peak resident memory, start-up time) and
writes it to bench/RESULTS.md. With --callgrind it adds the instructions per request that
bench/callgrind.py counts.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "admin-api-keys")
SEED = os.path.join(ROOT, "target", "release", "examples", "seed")
CREATE_LUA = os.path.join(ROOT, "bench", "create.lua")
AUTH_LUA = os.path.join(ROOT, "bench", "auth.lua")
API = "/v1/organization/admin_api_keys"

# The targets of issue 4.
RETRIEVE_RATIO_TARGET = 0.75
DEEP_PAGE_RATIO_TARGET = 1.3
RSS_TARGET_MB = 64
STARTUP_TARGET_MS = 150


# With two or more cores, the server and wrk each get a core of their own, so the scheduler
# moving them around does not add noise to the ratios. PostgreSQL is not pinned.
SERVER_CPU, LOAD_CPU = 1, 0


def pinned(cpu):
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def seeded_id(position):
    return f"key_seed{position:016d}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def live_hashes(base):
    """The count of the server's set of live key hashes, from its /metrics (None if absent)."""
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    match = re.search(r'^admin_api_keys_cache_entries\{cache="live_hashes"\} (\S+)$', text, re.M)
    return int(float(match.group(1))) if match else None


def wait_key_set(base, at_least, timeout=600, interval=0.01):
    """Waits until the server's set of live key hashes (loaded in the background after start)
    holds `at_least` hashes; returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        held = live_hashes(base)
        if held is not None and held >= at_least:
            return time.perf_counter() - started
        time.sleep(interval)
    sys.exit(f"bench: the set of live key hashes did not reach {at_least:,} in {timeout} s")


class Server:
    """The release binary on `database_url`, one worker, with a peak-RSS sampler."""

    def __init__(self, database_url, workers=1):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            BIND_ADDR=f"127.0.0.1:{self.port}",
            WORKERS=str(workers),
            RUST_LOG="warn",
        )
        self.started = time.perf_counter()
        self.process = subprocess.Popen(pinned(SERVER_CPU) + [BINARY], env=env,
                                        stdout=subprocess.DEVNULL)
        self.ready_ms = self._wait_ready()
        self.peak_rss_kb = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _wait_ready(self):
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"bench: the server exited with {self.process.returncode}")
            if http_status(self.base + "/readyz") == 200:
                return (time.perf_counter() - self.started) * 1000
            time.sleep(0.001)
        sys.exit("bench: the server did not become ready in 30 s")

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _sample(self):
        while self._sampling and self.process.poll() is None:
            try:
                self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        self._sampling = False
        self.process.terminate()
        self.process.wait(timeout=30)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_latency(text):
    match = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(match.group(1)) * UNITS[match.group(2)]


def wrk(url, args, key=None, script=None, duration=None):
    command = pinned(LOAD_CPU) + ["wrk", "-t1", f"-c{args.connections}",
                                  f"-d{duration or args.duration}s", "--latency"]
    env = dict(os.environ)
    if key:
        # The key goes through the environment and a Lua script, never wrk's argv (ps).
        command += ["-s", script or AUTH_LUA]
        env["AAK_KEY"] = key
    output = subprocess.run(command + [url], env=env, capture_output=True, text=True,
                            check=True).stdout
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": parse_latency(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),
        "p99": parse_latency(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),
        "errors": 0,
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    if non_2xx:
        result["errors"] += int(non_2xx.group(1))
    if socket_errors:
        result["errors"] += sum(int(n) for n in socket_errors.groups())
    return result


def seed(database_url, keys):
    """Makes the database hold `keys` synthetic keys; returns the bench key on first use."""
    output = subprocess.run([SEED, "--database-url", database_url, "--keys", str(keys)],
                            capture_output=True, text=True)
    sys.stderr.write(output.stderr)
    if output.returncode != 0:
        sys.exit(f"bench: seeding failed with exit status {output.returncode}")
    return output.stdout.strip() or None


class Database:
    """A fresh database for one backend; on PostgreSQL, `name` is made (and later dropped)
    on the server at `pg_url`."""

    def __init__(self, backend, pg_url, name="aak_bench"):
        self.backend = backend
        self.pg_url = pg_url
        self.name = name
        if backend == "sqlite":
            self.dir = tempfile.TemporaryDirectory(prefix="aak-bench-")
            self.url = f"sqlite://{self.dir.name}/bench.db"
        else:
            self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._psql(f"CREATE DATABASE {name}")
            base, _, query = pg_url.partition("?")
            self.url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    def _psql(self, sql):
        subprocess.run(["psql", "-q", "-d", self.pg_url, "-c", sql], check=True,
                       capture_output=True)

    def drop(self):
        if self.backend == "sqlite":
            self.dir.cleanup()
        else:
            self._psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def scenarios(keys):
    """(slug, name, path, kind) per scenario at a table of `keys` synthetic keys."""
    deep = seeded_id(keys * 9 // 10)
    return [
        ("baseline", "GET /healthz (no auth; the baseline)", "/healthz", None),
        ("retrieve", "retrieve GET .../admin_api_keys/{id}", f"{API}/{seeded_id(keys // 2)}",
         "auth"),
        ("first", "list first page, limit=20", f"{API}?limit=20", "auth"),
        ("deep", "list deep page, limit=20&after=<key at 90%>", f"{API}?limit=20&after={deep}",
         "auth"),
        ("create", "create POST", API, "create"),
    ]


def run_backend(backend, args):
    """Rows for every scenario at every size. Read scenarios run `args.rounds` times,
    interleaved, and report medians, so a slow second of a shared machine does not decide a
    ratio; create runs once, last, since it grows the table."""
    database = Database(backend, args.pg_url)
    rows, peaks = [], {}
    key = None
    try:
        for keys in args.sizes:
            print(f"bench: {backend}: seeding {keys:,} keys", file=sys.stderr)
            key = seed(database.url, keys) or key
            server = Server(database.url)
            try:
                plan = scenarios(keys)
                runs = {slug: [] for slug, *_ in plan}
                for slug, _, path, kind in plan:
                    if kind == "auth":
                        wrk(server.base + path, args, key, duration=1)  # warm-up
                for _ in range(args.rounds):
                    for slug, _, path, kind in plan:
                        if kind != "create":
                            runs[slug].append(wrk(server.base + path, args,
                                                  key if kind else None))
                for slug, _, path, kind in plan:
                    if kind == "create":
                        runs[slug].append(wrk(server.base + path, args, key, CREATE_LUA))
                for slug, name, _, _ in plan:
                    result = {metric: statistics.median(run[metric] for run in runs[slug])
                              for metric in ("rps", "p50", "p99")}
                    result["errors"] = sum(run["errors"] for run in runs[slug])
                    print(f"bench: {backend} {keys:>9,} {name}: {result['rps']:,.0f} req/s",
                          file=sys.stderr)
                    rows.append(dict(backend=backend, keys=keys, slug=slug, scenario=name,
                                     **result))
                peaks[keys] = server.peak_rss_kb / 1024
            finally:
                server.stop()
    finally:
        database.drop()
    return rows, peaks


def startup_times(runs):
    """Milliseconds from spawn to /readyz 200 on a fresh SQLite file (migrations included)."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="aak-start-") as directory:
            server = Server(f"sqlite://{directory}/start.db")
            times.append(server.ready_ms)
            server.stop()
    return times


def fmt_ms(ms):
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms"


def verdict(ok):
    return "met" if ok else "**not met**"


def report(rows, peaks, starts, args, callgrind_lines=()):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    out = [
        "# Benchmark results",
        "",
        f"Written by `bash bench/run.sh` on {datetime.date.today()} at commit `{commit}`.",
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} "
        f"{platform.release()}. Load: wrk, 1 thread, {args.connections} connections, on the "
        "same machine as the server (and PostgreSQL). Server: release build, 1 HTTP worker, "
        "default pool (10). Each read row is the median of "
        f"{args.rounds} interleaved {args.duration} s runs after a 1 s warm-up; create is one "
        f"{args.duration} s run.",
        "",
        "Retrieve asks for one key over and over: the steady state, served from the cache. "
        "Keys seeded is the table size for the read rows; each create row adds the keys it "
        "makes (a few thousand) after them.",
        "",
        "| backend | keys seeded | scenario | req/s | p50 | p99 | vs baseline | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    by = {(r["backend"], r["keys"], r["slug"]): r for r in rows}
    baseline = {(r["backend"], r["keys"]): r["rps"] for r in rows if r["slug"] == "baseline"}
    for row in rows:
        ratio = row["rps"] / baseline[(row["backend"], row["keys"])]
        out.append(f"| {row['backend']} | {row['keys']:,} | {row['scenario']} | "
                   f"{row['rps']:,.0f} | {fmt_ms(row['p50'])} | {fmt_ms(row['p99'])} | "
                   f"{ratio:.2f}× | {row['errors']} |")
    out += ["", "## Targets", "", "| target | backend | measured | verdict |",
            "|---|---|---|---|"]
    small, large = min(args.sizes), max(args.sizes)
    for backend in args.backends:
        for keys in args.sizes:
            retrieve = by[(backend, keys, "retrieve")]["rps"]
            ratio = retrieve / baseline[(backend, keys)]
            out.append(f"| authenticated retrieve ≥ {RETRIEVE_RATIO_TARGET}× /healthz "
                       f"({keys:,} keys) | {backend} | {ratio:.2f}× | "
                       f"{verdict(ratio >= RETRIEVE_RATIO_TARGET)} |")
        if small != large:
            deep_small = by[(backend, small, "deep")]["p50"]
            deep_large = by[(backend, large, "deep")]["p50"]
            ratio = deep_large / deep_small
            out.append(f"| deep page p50 at {large:,} ≤ {DEEP_PAGE_RATIO_TARGET}× at "
                       f"{small:,} | {backend} | {fmt_ms(deep_large)} vs {fmt_ms(deep_small)}"
                       f" = {ratio:.2f}× | {verdict(ratio <= DEEP_PAGE_RATIO_TARGET)} |")
        peak = peaks[backend][large]
        out.append(f"| peak RSS under load at {large:,} keys ≤ {RSS_TARGET_MB} MB | {backend} |"
                   f" {peak:.1f} MB | {verdict(peak <= RSS_TARGET_MB)} |")
    if starts:
        median = statistics.median(starts)
        out.append(f"| start to ready (fresh SQLite, migrations) ≤ {STARTUP_TARGET_MS} ms | "
                   f"sqlite | median {median:.0f} ms of {len(starts)} (max {max(starts):.0f})"
                   f" | {verdict(median <= STARTUP_TARGET_MS)} |")
    if callgrind_lines:
        out += ["", "## Instructions per request (callgrind)", "", *callgrind_lines]
    out += ["", "Where the time of an authenticated request goes, measured with perf, and why a "
            "single run can land near the retrieve target: [PROFILE.md](PROFILE.md)."]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (default: both)")
    parser.add_argument("--sizes", default="1000,1000000",
                        help="synthetic keys stored, comma-separated (default: 1000,1000000)")
    parser.add_argument("--duration", type=int, default=2,
                        help="seconds per wrk run (default 2)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved runs of each read scenario; medians are reported "
                             "(default 5)")
    parser.add_argument("--connections", type=int, default=16,
                        help="wrk connections (default 16)")
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="server for the PostgreSQL runs (a database aak_bench is made)")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per request with bench/callgrind.py "
                             "(its default options; a few more minutes per backend)")
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "RESULTS.md"),
                        help="where to write the report ('-' for stdout only)")
    args = parser.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    args.sizes = sorted(int(n) for n in args.sizes.split(","))
    for tool, path in (("release binary", BINARY), ("seed example", SEED)):
        if not os.path.exists(path):
            sys.exit(f"bench: no {tool} at {path}; run bench/run.sh")

    rows, peaks = [], {}
    for backend in args.backends:
        backend_rows, peaks[backend] = run_backend(backend, args)
        rows += backend_rows
    starts = startup_times(5) if "sqlite" in args.backends else []
    callgrind_lines = []
    if args.callgrind:
        import callgrind  # bench/callgrind.py, which imports this module for its helpers

        options = callgrind.parse([])
        options.backends, options.pg_url = args.backends, args.pg_url
        callgrind_lines = callgrind.markdown(callgrind.measure_all(options), options)
    text = report(rows, peaks, starts, args, callgrind_lines)
    print(text)
    if args.output != "-":
        # Keep the section bench/proxy.py writes.
        if os.path.exists(args.output):
            with open(args.output) as current:
                kept = current.read()
            begin, end = "<!-- proxy.py: begin -->", "<!-- proxy.py: end -->"
            if begin in kept and end in kept:
                text += "\n" + begin + kept.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
        with open(args.output, "w") as out:
            out.write(text)
        print(f"bench: wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()

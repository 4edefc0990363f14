#!/usr/bin/env python3
"""Benchmarks the verification routes: forward auth (direct and through nginx) and
introspection, against /healthz and against the same nginx without auth_request.

For each backend it seeds 1,000 keys (bench/seed.rs), starts the release binary with one HTTP
worker and an nginx (one worker process) running deploy/nginx/forward-auth.conf in front of
deploy/nginx/echo-upstream.conf, plus a second server block in the same nginx that proxies to
the same upstream without auth_request. Server and nginx share one core, wrk has the other
(see bench.py), so the nginx ratio compares the same CPU spent with and without the check.
Every scenario runs `--rounds` times, interleaved, and the medians are reported.

It replaces the section between the markers in bench/RESULTS.md (or prints it with
--output -). Run it through `bash bench/run.sh proxy [options]`, which builds first and installs
wrk and nginx when they are missing.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import bench

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY = os.path.join(bench.ROOT, "deploy", "nginx")
INTROSPECT_LUA = os.path.join(bench.ROOT, "bench", "introspect.lua")
BEGIN = "<!-- proxy.py: begin -->"
END = "<!-- proxy.py: end -->"
KEYS = 1000

# The target of issue 11.
NGINX_RATIO_TARGET = 0.5

PLAIN_SERVER = """
server {
    listen 127.0.0.1:%(port)d;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://protected_app;
    }
}
"""


class Nginx:
    """nginx with the repository's forward-auth config in front of the service on
    `service_port`: `auth_base` checks keys, `plain_base` does not."""

    def __init__(self, service_port):
        self.dir = tempfile.TemporaryDirectory(prefix="aak-nginx-")
        root = self.dir.name
        auth_port, plain_port, upstream_port = (bench.free_port() for _ in range(3))
        for name in ("forward-auth.conf", "forward-auth-pass.conf", "forward-auth-check.conf",
                     "echo-upstream.conf"):
            with open(os.path.join(DEPLOY, name)) as source:
                text = source.read()
            text = (text.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{service_port};")
                    .replace("127.0.0.1:9000", f"127.0.0.1:{upstream_port}")
                    .replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{auth_port};"))
            with open(os.path.join(root, name), "w") as out:
                out.write(text)
        with open(os.path.join(root, "plain.conf"), "w") as out:
            out.write(PLAIN_SERVER % {"port": plain_port})
        temp = "\n".join(f"    {kind}_temp_path {root}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(os.path.join(root, "nginx.conf"), "w") as out:
            out.write(f"worker_processes 1;\npid {root}/nginx.pid;\n"
                      f"events {{ worker_connections 1024; }}\n"
                      f"http {{\n    access_log off;\n{temp}\n"
                      "    include forward-auth.conf;\n    include echo-upstream.conf;\n"
                      "    include plain.conf;\n}\n")
        os.chmod(root, 0o755)
        self.process = subprocess.Popen(
            bench.pinned(bench.SERVER_CPU)
            + [NGINX, "-p", root, "-c", f"{root}/nginx.conf", "-e", f"{root}/error.log",
               "-g", "daemon off;"])
        self.auth_base = f"http://127.0.0.1:{auth_port}"
        self.plain_base = f"http://127.0.0.1:{plain_port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", plain_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", auth_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    sys.exit("proxy: nginx did not start")
                time.sleep(0.02)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.dir.cleanup()


def plan(server, nginx):
    """(slug, name, url, kind) per scenario; kind None is unauthenticated."""
    return [
        ("baseline", "GET /healthz (no auth; the baseline)", server.base + "/healthz", None),
        ("forward", "forward auth GET /v1/forward-auth?permission=billing:read",
         server.base + "/v1/forward-auth?permission=billing:read", "auth"),
        ("introspect", "introspect POST /v1/introspect (a cached key)",
         server.base + "/v1/introspect", "introspect"),
        ("nginx_plain", "nginx → upstream, no auth_request (the nginx baseline)",
         nginx.plain_base + "/billing/invoices", None),
        ("nginx_auth", "nginx → auth_request forward auth → upstream",
         nginx.auth_base + "/billing/invoices", "auth"),
    ]


def run_backend(backend, args):
    database = bench.Database(backend, args.pg_url, name="aak_proxy_bench")
    rows = []
    try:
        print(f"proxy: {backend}: seeding {KEYS:,} keys", file=sys.stderr)
        key = bench.seed(database.url, KEYS)
        server = bench.Server(database.url)
        nginx = Nginx(server.port)
        try:
            scenarios = plan(server, nginx)

            def load(url, kind, duration=None):
                script = INTROSPECT_LUA if kind == "introspect" else None
                return bench.wrk(url, args, key if kind else None, script, duration)

            for _, _, url, kind in scenarios:
                load(url, kind, duration=1)  # warm-up
            runs = {slug: [] for slug, *_ in scenarios}
            for _ in range(args.rounds):
                for slug, _, url, kind in scenarios:
                    runs[slug].append(load(url, kind))
            for slug, name, _, _ in scenarios:
                result = {metric: statistics.median(run[metric] for run in runs[slug])
                          for metric in ("rps", "p50", "p99")}
                result["errors"] = sum(run["errors"] for run in runs[slug])
                print(f"proxy: {backend} {name}: {result['rps']:,.0f} req/s", file=sys.stderr)
                rows.append(dict(backend=backend, slug=slug, scenario=name, **result))
        finally:
            nginx.stop()
            server.stop()
    finally:
        database.drop()
    return rows


def section(rows, args):
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=bench.ROOT,
                            capture_output=True, text=True).stdout.strip()
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    out = [
        BEGIN,
        "## Forward auth and introspection",
        "",
        f"Written by `bash bench/run.sh proxy` at commit `{commit}`, {KEYS:,} keys seeded, "
        f"{version}. The server (1 HTTP worker) and nginx (1 worker process) share one core, "
        f"wrk (1 thread, {args.connections} connections) has the other; each row is the "
        f"median of {args.rounds} interleaved {args.duration} s runs. The key is cached and "
        "holds the required permission, so every check is answered from memory. "
        "“vs baseline” is against /healthz for direct rows, against nginx without "
        "auth_request for the nginx row.",
        "",
        "| backend | scenario | req/s | p50 | p99 | vs baseline | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by = {(r["backend"], r["slug"]): r for r in rows}
    for row in rows:
        base = "nginx_plain" if row["slug"].startswith("nginx") else "baseline"
        ratio = row["rps"] / by[(row["backend"], base)]["rps"]
        out.append(f"| {row['backend']} | {row['scenario']} | {row['rps']:,.0f} | "
                   f"{bench.fmt_ms(row['p50'])} | {bench.fmt_ms(row['p99'])} | {ratio:.2f}× | "
                   f"{row['errors']} |")
    out += ["", "| target | backend | measured | verdict |", "|---|---|---|---|"]
    for backend in args.backends:
        ratio = by[(backend, "nginx_auth")]["rps"] / by[(backend, "nginx_plain")]["rps"]
        out.append(f"| through nginx ≥ {NGINX_RATIO_TARGET}× nginx without auth_request | "
                   f"{backend} | {ratio:.2f}× | {bench.verdict(ratio >= NGINX_RATIO_TARGET)} |")
    out += ["", "Instructions per request for these routes: [CALLGRIND.md](CALLGRIND.md).", END]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (default: both)")
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run (default 2)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved runs of each scenario; medians are reported (default 5)")
    parser.add_argument("--connections", type=int, default=16,
                        help="wrk connections (default 16)")
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="server for the PostgreSQL run (a database aak_proxy_bench is made)")
    parser.add_argument("--output", default=os.path.join(bench.ROOT, "bench", "RESULTS.md"),
                        help="the report whose section to replace ('-' for stdout only)")
    args = parser.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    if not os.path.exists(bench.BINARY):
        sys.exit(f"proxy: no release binary at {bench.BINARY}; run bench/run.sh proxy")
    rows = []
    for backend in args.backends:
        rows += run_backend(backend, args)
    text = section(rows, args)
    print(text)
    if args.output == "-":
        return
    with open(args.output) as current:
        report = current.read()
    if BEGIN in report and END in report:
        head, rest = report.split(BEGIN, 1)
        report = head + text.rstrip("\n") + rest.split(END, 1)[1]
    else:
        report = report.rstrip("\n") + "\n\n" + text
    with open(args.output, "w") as out:
        out.write(report)
    print(f"proxy: wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()

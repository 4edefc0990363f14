#!/usr/bin/env python3
"""Benchmarks the verification routes: forward auth (direct, through nginx and through
Caddy) and introspection, against /healthz and against the same proxies without the check.

For each backend it seeds 1,000 keys (bench/seed.rs), starts the release binary with one HTTP
worker and an nginx (one worker process) running deploy/nginx/forward-auth.conf in front of
deploy/nginx/echo-upstream.conf, plus a second server block in the same nginx that proxies to
the same upstream without auth_request; and a Caddy (when installed; GOMAXPROCS follows its
one-core affinity) running deploy/caddy/Caddyfile, whose `forward_auth` guards the stand-in
upstream of that file, plus a second site that proxies to the same stand-in without it.
Server and proxies share one core, wrk has the other (see bench.py), so each proxy's ratio
compares the same CPU spent with and without the check. Every scenario runs `--rounds` times,
interleaved, and the medians are reported.

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
CADDY = shutil.which("caddy")
DEPLOY = os.path.join(bench.ROOT, "deploy", "nginx")
CADDYFILE = os.path.join(bench.ROOT, "deploy", "caddy", "Caddyfile")
INTROSPECT_LUA = os.path.join(bench.ROOT, "bench", "introspect.lua")
BEGIN = "<!-- proxy.py: begin -->"
END = "<!-- proxy.py: end -->"
KEYS = 1000

# The target of issue 27 (issue 11 asked for 0.5).
PROXY_RATIO_TARGET = 0.6

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
        wait_listening((plain_port, auth_port), self.process, "nginx")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.dir.cleanup()


def wait_listening(ports, process, what):
    deadline = time.monotonic() + 10
    while True:
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                sys.exit(f"proxy: {what} did not start")
            time.sleep(0.02)


class Caddy:
    """Caddy running the repository's Caddyfile in front of the service on `service_port`
    (`auth_base`), plus a site proxying to the same stand-in without `forward_auth`
    (`plain_base`)."""

    def __init__(self, service_port):
        self.dir = tempfile.TemporaryDirectory(prefix="aak-caddy-")
        auth_port, plain_port, upstream_port = (bench.free_port() for _ in range(3))
        with open(CADDYFILE) as source:
            text = source.read()
        text = (text.replace("127.0.0.1:8080", f"127.0.0.1:{service_port}")
                .replace(":8000 {", f":{auth_port} {{")
                .replace("127.0.0.1:9000", f"127.0.0.1:{upstream_port}")
                .replace(":9000 {", f":{upstream_port} {{"))
        text += (f"\n:{plain_port} {{\n\tbind 127.0.0.1\n"
                 f"\treverse_proxy 127.0.0.1:{upstream_port}\n}}\n")
        # No access log is configured, as in the nginx runs.
        path = os.path.join(self.dir.name, "Caddyfile")
        with open(path, "w") as out:
            out.write(text)
        self.log = open(os.path.join(self.dir.name, "caddy.log"), "w")
        env = dict(os.environ, HOME=self.dir.name, XDG_DATA_HOME=self.dir.name,
                   XDG_CONFIG_HOME=self.dir.name)
        self.process = subprocess.Popen(
            bench.pinned(bench.SERVER_CPU)
            + [CADDY, "run", "--adapter", "caddyfile", "--config", path],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.auth_base = f"http://127.0.0.1:{auth_port}"
        self.plain_base = f"http://127.0.0.1:{plain_port}"
        wait_listening((auth_port, plain_port, upstream_port), self.process, "caddy")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
        self.dir.cleanup()


def plan(server, nginx, caddy):
    """(slug, name, url, kind) per scenario; kind None is unauthenticated."""
    caddy_rows = [
        ("caddy_plain", "Caddy → upstream, no forward_auth (the Caddy baseline)",
         caddy.plain_base + "/billing/invoices", None),
        ("caddy_auth", "Caddy → forward_auth → upstream",
         caddy.auth_base + "/billing/invoices", "auth"),
    ] if caddy else []
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
    ] + caddy_rows


def run_backend(backend, args):
    database = bench.Database(backend, args.pg_url, name="aak_proxy_bench")
    rows = []
    try:
        print(f"proxy: {backend}: seeding {KEYS:,} keys", file=sys.stderr)
        key = bench.seed(database.url, KEYS)
        server = bench.Server(database.url)
        nginx = Nginx(server.port)
        caddy = Caddy(server.port) if CADDY else None
        try:
            scenarios = plan(server, nginx, caddy)

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
            if caddy:
                caddy.stop()
            nginx.stop()
            server.stop()
    finally:
        database.drop()
    return rows


def section(rows, args):
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=bench.ROOT,
                            capture_output=True, text=True).stdout.strip()
    version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    if CADDY:
        caddy = subprocess.run([CADDY, "version"], capture_output=True, text=True).stdout
        version += f", Caddy {caddy.split()[0] if caddy.split() else '?'}"
    out = [
        BEGIN,
        "## Forward auth and introspection",
        "",
        f"Written by `bash bench/run.sh proxy` at commit `{commit}`, {KEYS:,} keys seeded, "
        f"{version}. The server (1 HTTP worker) and the proxy (nginx: 1 worker process; Caddy: "
        "GOMAXPROCS 1 from its affinity) share one core, "
        f"wrk (1 thread, {args.connections} connections) has the other; each row is the "
        f"median of {args.rounds} interleaved {args.duration} s runs. The key is cached and "
        "holds the required permission, so every check is answered from memory. "
        "“vs baseline” is against /healthz for direct rows, against the same proxy without "
        "the check for the proxy rows (nginx without auth_request, Caddy without "
        "forward_auth).",
        "",
        "| backend | scenario | req/s | p50 | p99 | vs baseline | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by = {(r["backend"], r["slug"]): r for r in rows}
    for row in rows:
        base = (row["slug"].split("_")[0] + "_plain"
                if row["slug"].startswith(("nginx", "caddy")) else "baseline")
        ratio = row["rps"] / by[(row["backend"], base)]["rps"]
        out.append(f"| {row['backend']} | {row['scenario']} | {row['rps']:,.0f} | "
                   f"{bench.fmt_ms(row['p50'])} | {bench.fmt_ms(row['p99'])} | {ratio:.2f}× | "
                   f"{row['errors']} |")
    out += ["", "| target | backend | measured | verdict |", "|---|---|---|---|"]
    for backend in args.backends:
        for proxy, check in (("nginx", "auth_request"), ("caddy", "forward_auth")):
            if (backend, f"{proxy}_auth") not in by:
                continue
            ratio = by[(backend, f"{proxy}_auth")]["rps"] / by[(backend, f"{proxy}_plain")]["rps"]
            name = "nginx" if proxy == "nginx" else "Caddy"
            out.append(f"| through {name} ≥ {PROXY_RATIO_TARGET}× {name} without {check} | "
                       f"{backend} | {ratio:.2f}× | "
                       f"{bench.verdict(ratio >= PROXY_RATIO_TARGET)} |")
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

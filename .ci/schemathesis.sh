#!/usr/bin/env bash
# Runs schemathesis against the service's own /openapi.json, once on SQLite and once on
# PostgreSQL, and fails on any 5xx, any status code the document does not list for the
# operation, any response body that does not match its documented schema and any response
# whose Content-Type is not the documented one.
#
#   bash .ci/schemathesis.sh [BINARY]      BINARY defaults to target/debug/admin-api-keys,
#                                          which `cargo test` builds
#
# For each backend it makes a fresh database (SQLite: a file in a temporary directory;
# PostgreSQL: a uniquely named database on $TEST_DATABASE_URL's server, dropped afterwards),
# bootstraps an admin key, starts `serve` on a free port, waits for /readyz, runs schemathesis
# with the key as `Authorization: Bearer ...` and stops the server. The server's log goes to a
# file that is printed when the run fails. Both backends run even when the first one fails.
#
# What the run does, and why:
# - Checks: not_a_server_error, status_code_conformance, response_schema_conformance and
#   content_type_conformance (schemathesis' names). Its other checks (e.g. whether invalid
#   input is rejected) are not part of this gate.
# - Phases: all four. `examples` sends the document's examples; `coverage` walks each
#   parameter's boundaries and wrong types; `fuzzing` draws --max-examples cases per operation;
#   `stateful` chains create -> retrieve/update/rotate/delete through the links schemathesis
#   infers, which is where the keys' life cycle gets tested. --mode all generates both valid
#   (positive) and invalid (negative) data: a 4xx to invalid data must still be documented
#   and match the error schema, and no input may cause a 5xx.
# - Bounded and repeatable: --max-examples per operation, `timeout` around each backend's
#   run, a fixed --seed, one worker, no example database or cache carried between runs
#   (.ci/schemathesis.toml). The server's ids and clocks still differ from run to run.
# - Staying authenticated: schemathesis reuses key ids it saw in responses, so it rotates,
#   deletes or narrows the key it authenticates with (the 409 lock-out guard protects only the
#   last key able to manage keys). .ci/schemathesis_hooks.py then bootstraps a new key and
#   schemathesis replays the request ("Re-authenticated N times" in its summary; the script
#   prints how many keys it bootstrapped). An operation that gets only 401/403 fails the run
#   (warning missing_auth), and so does a `$ref` that points nowhere (unresolvable_reference),
#   since schemathesis then skips what it describes. After the run, a freshly bootstrapped key
#   must still list keys.
#
# Environment (all optional):
#   TEST_DATABASE_URL            PostgreSQL server to create the scratch database on
#                                (default postgres://postgres@127.0.0.1:5432/postgres)
#   SCHEMATHESIS_BACKENDS        "sqlite postgres" (default), or one of them
#   SCHEMATHESIS_MAX_EXAMPLES    test cases per operation and phase (default 100)
#   SCHEMATHESIS_SEED            seed of the data generation (default 20261202)
#   SCHEMATHESIS_TIME_CAP        seconds one backend's schemathesis run may take (default 360:
#                                42 operations take about 2 minutes on a loaded 2-core machine)
#   SCHEMATHESIS_VENV            where schemathesis is installed (default under ~/.cache)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ST_VERSION=4.32.5
ST_VENV=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/admin-api-keys/schemathesis-$ST_VERSION}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-20261202}
TIME_CAP=${SCHEMATHESIS_TIME_CAP:-360}
BACKENDS=${SCHEMATHESIS_BACKENDS:-sqlite postgres}
PG_ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

BINARY=${1:-target/debug/admin-api-keys}
if [[ ! -x $BINARY ]]; then
  echo "schemathesis.sh: no executable at $BINARY; build it first (cargo test or cargo build)" >&2
  exit 2
fi
BINARY=$(realpath "$BINARY")

# --- schemathesis, pinned, in a virtualenv of its own; installed only when missing ----------
st_installed() {
  [[ -x $ST_VENV/bin/st ]] && [[ $("$ST_VENV/bin/st" --version 2>/dev/null) == *" $ST_VERSION" ]]
}
if ! st_installed; then
  echo "installing schemathesis $ST_VERSION into $ST_VENV"
  rm -rf "$ST_VENV"
  mkdir -p "$(dirname "$ST_VENV")"
  "$PYTHON" -m venv "$ST_VENV"
  "$ST_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
  st_installed || { echo "schemathesis $ST_VERSION did not install" >&2; exit 2; }
fi

# --- state the EXIT trap cleans up ---------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aak-schemathesis.XXXXXX")
SERVER_PID=
ST_PID=
PG_DB=

stop_server() {
  if [[ -n $SERVER_PID ]]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

drop_pg_db() {
  if [[ -n $PG_DB ]]; then
    psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" \
      >/dev/null 2>&1 ||
      psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null ||
      echo "schemathesis.sh: could not drop database $PG_DB" >&2
    PG_DB=
  fi
}

cleanup() {
  if [[ -n $ST_PID ]]; then
    kill -TERM "$ST_PID" 2>/dev/null || true
    wait "$ST_PID" 2>/dev/null || true
  fi
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until GET $1 answers 200, or the server process is gone, or 60 s have passed.
wait_ready() {
  "$PYTHON" - "$1" "$SERVER_PID" <<'EOF'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# Prints the server log of backend $1 (file $2) and keeps a copy under target/schemathesis/.
# A run logs one long line per request, so past 300 lines it prints the ERROR lines (a 500's
# cause is logged there, with the request) and the last 50 lines.
print_log() {
  local lines kept="$ROOT/target/schemathesis/$1-server.log"
  mkdir -p "$(dirname "$kept")" && cp "$2" "$kept" || kept="(not kept)"
  lines=$(wc -l <"$2")
  echo "---- server log ($1, $lines lines; full log: $kept) ----"
  if ((lines <= 300)); then
    cat "$2"
  else
    echo "-- ERROR lines:"
    grep -a ' ERROR ' "$2" || echo "(none)"
    echo "-- last 50 lines:"
    tail -n 50 "$2"
  fi
  echo "---- end of server log ($1) ----"
}

# Runs one backend: $1 is sqlite or postgres. Returns non-zero when schemathesis found a
# problem, did not finish in time, or the server could not be started.
run_backend() {
  local backend=$1 dir="$WORK/$1" database_url
  mkdir -p "$dir"
  case $backend in
    sqlite)
      database_url="sqlite://$dir/admin-api-keys.db"
      ;;
    postgres)
      PG_DB="aak_schemathesis_$(date +%s)_$$_$RANDOM"
      psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null || return 1
      database_url=$("$PYTHON" -c '
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_ADMIN_URL" "$PG_DB") || return 1
      ;;
    *)
      echo "schemathesis.sh: unknown backend $backend" >&2
      return 2
      ;;
  esac
  export DATABASE_URL=$database_url

  local key
  key=$("$BINARY" bootstrap --owner-name schemathesis --key-name "schemathesis" 2>"$dir/bootstrap.log") || {
    cat "$dir/bootstrap.log" >&2
    return 1
  }

  # Pick a free port and start the server; if another process took the port in between,
  # the server exits at once and the next attempt takes another port.
  local port log="$dir/server.log" attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    BIND_ADDR=127.0.0.1:$port NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} \
      "$BINARY" serve >"$log" 2>&1 &
    SERVER_PID=$!
    if wait_ready "http://127.0.0.1:$port/readyz"; then
      break
    fi
    stop_server
    if [[ $attempt == 3 ]]; then
      echo "schemathesis.sh ($backend): the server did not become ready" >&2
      print_log "$backend" "$log"
      return 1
    fi
  done

  local started rc=0 elapsed
  started=$(date +%s)
  # Run from the scratch directory, so nothing (reports, caches) lands in the work tree. In
  # the background, so that a signal to this script stops it at once (see cleanup).
  (
    cd "$dir"
    exec env AAK_BINARY="$BINARY" AAK_FIRST_KEY="$key" AAK_MINT_LOG="$dir/minted.log" \
      SCHEMATHESIS_HOOKS="$ROOT/.ci/schemathesis_hooks.py" \
      timeout --kill-after=10 "$TIME_CAP" \
      "$ST_VENV/bin/st" --config-file "$ROOT/.ci/schemathesis.toml" --no-color run \
      "http://127.0.0.1:$port/openapi.json" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
      --phases examples,coverage,fuzzing,stateful \
      --mode all \
      --max-examples "$MAX_EXAMPLES" \
      --seed "$SEED" \
      --generation-database none \
      --workers 1 \
      --continue-on-failure \
      --request-timeout 30
  ) &
  ST_PID=$!
  wait "$ST_PID" || rc=$?
  ST_PID=
  elapsed=$(($(date +%s) - started))

  local minted=0
  [[ -f $dir/minted.log ]] && minted=$(wc -l <"$dir/minted.log")
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis.sh ($backend): the server exited during the run" >&2
    if [[ $rc == 0 ]]; then rc=1; fi
  fi
  # The run must leave a server that still serves: a freshly bootstrapped key lists keys.
  local probe_key
  if ! probe_key=$("$BINARY" bootstrap --owner-name probe 2>>"$dir/bootstrap.log"); then
    echo "schemathesis.sh ($backend): bootstrap failed after the run" >&2
    if [[ $rc == 0 ]]; then rc=1; fi
  elif ! "$PYTHON" - "http://127.0.0.1:$port/v1/organization/admin_api_keys?limit=1" "$probe_key" <<'EOF'; then
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
EOF
    echo "schemathesis.sh ($backend): after the run, a new key cannot list keys" >&2
    if [[ $rc == 0 ]]; then rc=1; fi
  fi

  stop_server
  if [[ $backend == postgres ]]; then drop_pg_db; fi

  if [[ $rc == 124 || $rc == 137 ]]; then
    echo "== schemathesis ($backend): FAILED: did not finish within ${TIME_CAP}s"
  elif [[ $rc != 0 ]]; then
    echo "== schemathesis ($backend): FAILED (exit $rc) after ${elapsed}s; re-bootstrapped keys: $minted"
  else
    echo "== schemathesis ($backend): passed in ${elapsed}s; re-bootstrapped keys: $minted"
  fi
  if [[ $rc != 0 ]]; then
    print_log "$backend" "$log"
    return 1
  fi
}

failed=()
for backend in $BACKENDS; do
  echo "== schemathesis ($backend): $ST_VENV/bin/st $ST_VERSION, seed $SEED, $MAX_EXAMPLES examples per operation"
  run_backend "$backend" || failed+=("$backend")
  unset DATABASE_URL
done
if ((${#failed[@]})); then
  echo "schemathesis found problems on: ${failed[*]}" >&2
  exit 1
fi

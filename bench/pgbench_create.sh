#!/usr/bin/env bash
# The PostgreSQL reference for the create benchmark: how many transactions per second the
# server itself commits when each does what a key create writes, one INSERT into
# admin_api_keys (firing the same NOTIFY trigger) and one INSERT into audit_logs, with no
# service in between. The service's create req/s on PostgreSQL is compared with this
# (target: at least 0.5x).
#
#   bash bench/pgbench_create.sh                    # 16 clients, 10 s
#   CLIENTS=8 DURATION=30 bash bench/pgbench_create.sh
#
# Needs pgbench and psql (PostgreSQL's client tools) and a server at BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres), where it creates a scratch database
# `aak_pgbench` with the service's migrations and drops it afterwards. Statements are sent
# prepared (-M prepared), as Diesel does. The service's create also reads the owner's email
# and reads the new key back (two SELECTs in the same transaction); this script leaves those
# out, so it is an upper bound on what the service could reach.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

BASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-10}
DB=aak_pgbench
export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE about the absent database

PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null |
    sort -V | tail -n 1)
if [ -z "$PGBENCH" ]; then
    echo "pgbench_create: pgbench not found (apt-get install postgresql-client)" >&2
    exit 1
fi

# The scratch database's URL: the base URL with its database name replaced.
base=${BASE_URL%%\?*}
query=${BASE_URL#"$base"}
URL="${base%/*}/$DB$query"

psql -q -d "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
psql -q -d "$BASE_URL" -c "CREATE DATABASE $DB"
script=$(mktemp)
cleanup() {
    rm -f "$script"
    psql -q -d "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
}
trap cleanup EXIT

# The service's schema, migrations in version order (the glob sorts them).
for up in migrations/postgres/*/up.sql; do
    psql -q -v ON_ERROR_STOP=1 -d "$URL" -f "$up"
done
psql -q -v ON_ERROR_STOP=1 -d "$URL" -c \
    "INSERT INTO users (id, name, created_at) VALUES ('user-bench', 'bench', 0)"

# One create: a random 63-bit :r names the key (and its audit event's resource), as the
# service's random ids do; the key hash is 64 random hex digits like a SHA-256. pgbench
# replaces every `:name` in the text, string literals included, hence the space in the
# JSON's `: null`.
cat >"$script" <<'SQL'
\set r random(1, 9223372036854775807)
BEGIN;
INSERT INTO admin_api_keys
    (id, name, key_hash, redacted_value, owner_id, created_at, expires_at, scopes)
VALUES
    ('key_' || substr(md5(:r::text), 1, 24), 'bench',
     md5(random()::text) || md5(random()::text), 'sk-admin...abcd', 'user-bench',
     extract(epoch FROM now())::bigint, NULL,
     'admin_api_keys.read admin_api_keys.write audit_logs.read');
INSERT INTO audit_logs (id, type, effective_at, actor_id, actor, resource_id, details)
VALUES
    ('audit_log-' || substr(md5(random()::text), 1, 24), 'api_key.created',
     extract(epoch FROM now())::bigint, 'key_bench',
     '{"type":"api_key","api_key":{"id":"key_bench","type":"user","user":{"id":"user-bench"}}}',
     'key_' || substr(md5(:r::text), 1, 24),
     '{"id":"key_' || substr(md5(:r::text), 1, 24) || '","data":{"scopes":['
        || '"admin_api_keys.read","admin_api_keys.write","audit_logs.read"],'
        || '"name":"bench","expires_at": null}}');
COMMIT;
SQL

echo "pgbench_create: $CLIENTS clients, ${DURATION} s, $("$PGBENCH" --version)" >&2
output=$("$PGBENCH" -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$script" "$URL")
echo "$output"
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$output" | tail -n 1)
echo "pgbench_create: $tps transactions/s (create reference; the service's target is >= 0.5x)"

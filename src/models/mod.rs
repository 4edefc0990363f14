//! Row types and their queries, one file per table. Every function takes a connection and
//! returns `QueryResult`: no HTTP (that is `routes`) and no rules (that is `services`).

pub mod admin_api_key;
pub mod audit_log;
pub mod idempotency;
pub mod invite;
pub mod invite_project;
pub mod project;
pub mod project_api_key;
pub mod project_user;
pub mod rate_limit;
pub mod service_account;
pub mod user;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

use crate::db::DbConnection;

/// Two writes as one PostgreSQL statement, `WITH first AS (<first>) <second>`: one round trip
/// instead of two, and still a statement Diesel prepares once and keeps (both parts have
/// static query ids). PostgreSQL runs a data-modifying `WITH` to completion whether or not
/// the rest reads it; the two must not depend on each other (neither sees the other's row).
/// What it returns is what `second` returns.
#[derive(Debug, Clone, Copy)]
pub struct WithWrite<A, B> {
    first: A,
    second: B,
}

impl<A, B> WithWrite<A, B> {
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: QueryFragment<Pg>, B: QueryFragment<Pg>> QueryFragment<Pg> for WithWrite<A, B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH first_write AS (");
        self.first.walk_ast(out.reborrow())?;
        out.push_sql(") ");
        self.second.walk_ast(out.reborrow())
    }
}

impl<A: QueryId, B: QueryId> QueryId for WithWrite<A, B> {
    type QueryId = WithWrite<A::QueryId, B::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = A::HAS_STATIC_QUERY_ID && B::HAS_STATIC_QUERY_ID;
}

impl<A, B: Query> Query for WithWrite<A, B> {
    type SqlType = B::SqlType;
}

impl<A, B, Conn> RunQueryDsl<Conn> for WithWrite<A, B> {}

/// The tables of keys, whose `last_used_at` is written alike.
#[derive(Clone, Copy, Debug)]
pub enum KeyTable {
    Admin,
    Project,
}

impl KeyTable {
    fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin_api_keys",
            Self::Project => "project_api_keys",
        }
    }
}

/// Writes a batch of `(key id, used at)` to `table`, moving each `last_used_at` only forward;
/// ids the table does not hold match nothing. The batch travels as two arrays on PostgreSQL
/// and as one JSON array on SQLite, so the statement text is the same whatever the batch size.
fn record_last_used(
    conn: &mut DbConnection,
    table: KeyTable,
    uses: &[(String, i64)],
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Text};

    let t = table.name();
    match conn {
        DbConnection::Pg(pg) => {
            let (ids, times): (Vec<&str>, Vec<i64>) =
                uses.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
            // The locking CTE takes the row locks in id order, so replicas flushing the same
            // keys at once wait for each other instead of deadlocking.
            diesel::sql_query(format!(
                "WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS u(id, at)), \
                      locked AS (SELECT k.id FROM {t} AS k JOIN u ON k.id = u.id \
                                 ORDER BY k.id FOR UPDATE OF k) \
                 UPDATE {t} AS k SET last_used_at = u.at FROM u, locked \
                 WHERE k.id = u.id AND locked.id = k.id \
                   AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"
            ))
            .bind::<Array<Text>, _>(ids)
            .bind::<Array<BigInt>, _>(times)
            .execute(pg)
        }
        DbConnection::Sqlite(sqlite) => {
            let batch = serde_json::to_string(uses)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            diesel::sql_query(format!(
                "UPDATE {t} SET last_used_at = u.at \
                 FROM (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(?)) AS u \
                 WHERE {t}.id = u.id \
                   AND ({t}.last_used_at IS NULL OR {t}.last_used_at < u.at)"
            ))
            .bind::<Text, _>(batch)
            .execute(sqlite)
        }
    }
}

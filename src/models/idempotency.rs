//! The `idempotency_records` table: what a create or rotate sent with an `Idempotency-Key`
//! made, keyed by the calling key and the SHA-256 of the header (the header itself is not
//! stored). The rules (24 hours, sealing, conflicts) are in `services::idempotency`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::db::DbConnection;
use crate::schema::idempotency_records;

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_records)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct IdempotencyRecord {
    pub caller_key_id: String,
    pub idempotency_key_hash: String,
    pub request_fingerprint: String,
    pub status: i32,
    pub key_id: String,
    /// The sealed answer (hex), or `None` when it was not kept.
    pub response: Option<String>,
    pub created_at: i64,
}

/// The record of `(caller_key_id, idempotency_key_hash)` made at or after `since`.
pub fn find(
    conn: &mut DbConnection,
    caller_key_id: &str,
    idempotency_key_hash: &str,
    since: i64,
) -> QueryResult<Option<IdempotencyRecord>> {
    idempotency_records::table
        .filter(idempotency_records::caller_key_id.eq(caller_key_id))
        .filter(idempotency_records::idempotency_key_hash.eq(idempotency_key_hash))
        .filter(idempotency_records::created_at.ge(since))
        .select(IdempotencyRecord::as_select())
        .first(conn)
        .optional()
}

/// Stores `record`.
pub fn insert(conn: &mut DbConnection, record: &IdempotencyRecord) -> QueryResult<()> {
    diesel::insert_into(idempotency_records::table)
        .values(record)
        .execute(conn)
        .map(drop)
}

/// Deletes the records made before `before`; returns how many.
pub fn delete_older_than(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(idempotency_records::table.filter(idempotency_records::created_at.lt(before)))
        .execute(conn)
}

/// Takes the transaction-scoped lock `id` if no other transaction holds it; `false` if one
/// does. PostgreSQL only (an advisory lock); on SQLite, whose writes run one at a time, it is
/// always taken.
pub fn try_lock(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    match conn {
        DbConnection::Pg(pg) => diesel::select(
            diesel::dsl::sql::<Bool>("pg_try_advisory_xact_lock(")
                .bind::<BigInt, _>(id)
                .sql(")"),
        )
        .get_result(pg),
        DbConnection::Sqlite(_) => Ok(true),
    }
}

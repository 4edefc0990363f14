//! The `audit_logs` table: append-only. Rows are written inside the transaction of the change
//! they record and nothing updates or deletes them.
//!
//! Listing is newest first, keyset-paginated on `(effective_at, id)` like the keys.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::schema::audit_logs;

/// A stored event.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_logs)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditLogRow {
    pub id: String,
    pub type_: String,
    pub effective_at: i64,
    pub actor_id: String,
    pub actor: String,
    pub resource_id: String,
    pub details: String,
}

/// Filters of a listing; empty lists mean "any".
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub effective_gt: Option<i64>,
    pub effective_gte: Option<i64>,
    pub effective_lt: Option<i64>,
    pub effective_lte: Option<i64>,
    pub event_types: Vec<String>,
    pub actor_ids: Vec<String>,
    pub resource_ids: Vec<String>,
}

/// Which side of a cursor a page is on.
#[derive(Clone, Debug)]
pub enum AuditCursor {
    /// Older than this entry (the next page).
    After(i64, String),
    /// Newer than this entry (the previous page).
    Before(i64, String),
}

pub fn insert(conn: &mut DbConnection, row: &AuditLogRow) -> QueryResult<()> {
    diesel::insert_into(audit_logs::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Where entry `id` sits, if it exists.
pub fn position_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(i64, String)>> {
    audit_logs::table
        .filter(audit_logs::id.eq(id))
        .select((audit_logs::effective_at, audit_logs::id))
        .first(conn)
        .optional()
}

/// Up to `limit` entries, newest first, on the requested side of `cursor`, and whether more
/// follow beyond them (further from the cursor).
pub fn list_page(
    conn: &mut DbConnection,
    cursor: Option<&AuditCursor>,
    filter: &AuditFilter,
    limit: i64,
) -> QueryResult<(Vec<AuditLogRow>, bool)> {
    use crate::schema::audit_logs::dsl::*;

    let mut query = audit_logs
        .select(AuditLogRow::as_select())
        .limit(limit + 1)
        .into_boxed();
    if let Some(t) = filter.effective_gt {
        query = query.filter(effective_at.gt(t));
    }
    if let Some(t) = filter.effective_gte {
        query = query.filter(effective_at.ge(t));
    }
    if let Some(t) = filter.effective_lt {
        query = query.filter(effective_at.lt(t));
    }
    if let Some(t) = filter.effective_lte {
        query = query.filter(effective_at.le(t));
    }
    if !filter.event_types.is_empty() {
        query = query.filter(type_.eq_any(filter.event_types.clone()));
    }
    if !filter.actor_ids.is_empty() {
        query = query.filter(actor_id.eq_any(filter.actor_ids.clone()));
    }
    if !filter.resource_ids.is_empty() {
        query = query.filter(resource_id.eq_any(filter.resource_ids.clone()));
    }
    // Rows come nearest-to-the-cursor first; the extra one only tells whether more follow.
    let (mut rows, walked_forward): (Vec<AuditLogRow>, bool) = match cursor {
        None => (
            query.order((effective_at.desc(), id.desc())).load(conn)?,
            false,
        ),
        Some(AuditCursor::After(at, cursor_id)) => (
            query
                .filter(
                    effective_at
                        .le(*at)
                        .and(effective_at.lt(*at).or(id.lt(cursor_id.clone()))),
                )
                .order((effective_at.desc(), id.desc()))
                .load(conn)?,
            false,
        ),
        Some(AuditCursor::Before(at, cursor_id)) => (
            query
                .filter(
                    effective_at
                        .ge(*at)
                        .and(effective_at.gt(*at).or(id.gt(cursor_id.clone()))),
                )
                .order((effective_at.asc(), id.asc()))
                .load(conn)?,
            true,
        ),
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if walked_forward {
        // Every page is presented newest first.
        rows.reverse();
    }
    Ok((rows, has_more))
}

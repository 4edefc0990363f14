//! The `audit_logs` table: append-only. Rows are written inside the transaction of the change
//! they record and nothing updates or deletes them.
//!
//! Listing is newest first, keyset-paginated on `(effective_at, id)` like the keys.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

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
    /// The user behind the actor; `None` only on rows older than the column that the
    /// migration could not attribute.
    pub actor_user_id: Option<String>,
    /// The project the event is scoped to, if any.
    pub project_id: Option<String>,
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
    /// Only events whose actor is this user or one of their keys.
    pub owner_id: Option<String>,
    /// Only events scoped to one of these projects.
    pub project_ids: Vec<String>,
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

diesel::define_sql_function!(fn replace(text: Text, from: Text, to: Text) -> Text);

/// Separates the values of a list filter when it is bound as one text parameter. Filter
/// values never contain control characters (the route refuses them), so the encoding is
/// unambiguous.
const SEPARATOR: char = '\u{1f}';

/// `values` as one bound text (`\x1fa\x1fb\x1f`), so that a filter of any length keeps the
/// statement's shape.
fn joined(values: &[String]) -> String {
    let mut out = String::from(SEPARATOR);
    for value in values {
        out.push_str(value);
        out.push(SEPARATOR);
    }
    out
}

/// Up to `limit` entries, newest first, on the requested side of `cursor`, and whether more
/// follow beyond them (further from the cursor).
///
/// As for keys, every filter is a bound parameter of one fixed statement per cursor shape, so
/// Diesel prepares each shape once per connection (except the indexed narrowing below). A list filter matches a column when
/// `replace(list, SEP || column || SEP, '')` differs from the list: exact, without LIKE's
/// wildcards, and the same on both backends.
pub fn list_page(
    conn: &mut DbConnection,
    cursor: Option<&AuditCursor>,
    filter: &AuditFilter,
    limit: i64,
) -> QueryResult<(Vec<AuditLogRow>, bool)> {
    use crate::schema::audit_logs::dsl::*;
    use diesel::IntoSql;

    // A macro rather than a closure: each column has its own type.
    macro_rules! member {
        ($values:expr, $column:expr) => {{
            let list = joined($values);
            let sep = SEPARATOR.to_string();
            $values.is_empty().into_sql::<Bool>().or(replace(
                list.clone().into_sql::<Text>(),
                sep.clone().into_sql::<Text>().concat($column).concat(sep),
                "",
            )
            .ne(list))
        }};
    }
    let lowest = [
        filter.effective_gt.map(|t| t.saturating_add(1)),
        filter.effective_gte,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(i64::MIN);
    let highest = [
        filter.effective_lt.map(|t| t.saturating_sub(1)),
        filter.effective_lte,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(i64::MAX);
    let any_owner = filter.owner_id.is_none();
    let owner = filter.owner_id.clone().unwrap_or_default();
    // Rows come nearest-to-the-cursor first; the extra one only tells whether more follow.
    macro_rules! load {
        ($narrowed:expr) => {{
            let page = audit_logs
                .select(AuditLogRow::as_select())
                .filter($narrowed)
                .filter(effective_at.ge(lowest).and(effective_at.le(highest)))
                .filter(member!(&filter.event_types, type_))
                .filter(member!(&filter.actor_ids, actor_id))
                .filter(member!(&filter.resource_ids, resource_id))
                // A NULL project makes the test NULL: such entries match only without a filter.
                .filter(member!(&filter.project_ids, project_id.assume_not_null()))
                .filter(
                    any_owner
                        .into_sql::<Bool>()
                        .or(actor_user_id.eq(owner.clone())),
                )
                .limit(limit + 1);
            match cursor {
                None => (
                    page.order((effective_at.desc(), id.desc())).load(conn)?,
                    false,
                ),
                Some(AuditCursor::After(at, cursor_id)) => (
                    page.filter(
                        effective_at
                            .le(*at)
                            .and(effective_at.lt(*at).or(id.lt(cursor_id.clone()))),
                    )
                    .order((effective_at.desc(), id.desc()))
                    .load(conn)?,
                    false,
                ),
                Some(AuditCursor::Before(at, cursor_id)) => (
                    page.filter(
                        effective_at
                            .ge(*at)
                            .and(effective_at.gt(*at).or(id.gt(cursor_id.clone()))),
                    )
                    .order((effective_at.asc(), id.asc()))
                    .load(conn)?,
                    true,
                ),
            }
        }};
    }
    // A filter on resources or actors also narrows with `IN (...)`, which can use that
    // column's index (a rarely touched key's history is found without scanning the log).
    // That shape varies with the number of values and is prepared per request; pages
    // without such a filter keep the one static shape.
    let (mut rows, walked_forward): (Vec<AuditLogRow>, bool) = if !filter.resource_ids.is_empty() {
        load!(resource_id.eq_any(&filter.resource_ids))
    } else if !filter.actor_ids.is_empty() {
        load!(actor_id.eq_any(&filter.actor_ids))
    } else {
        load!(true.into_sql::<Bool>())
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if walked_forward {
        // Every page is presented newest first.
        rows.reverse();
    }
    Ok((rows, has_more))
}

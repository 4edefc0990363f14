//! The `service_accounts` table: a project's non-human owners of project keys.
//!
//! Listing is keyset pagination over `(created_at, id)` within a project, oldest first.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::models::admin_api_key::RowLock;
use crate::schema::service_accounts;

/// A stored service account.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_accounts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ServiceAccount {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// `owner` or `member`; `none` for one made with `create_service_account_only`.
    pub role: String,
    pub created_at: i64,
}

/// Locks the service account `id` of `project_id` (if it exists) until the transaction ends,
/// on PostgreSQL (SQLite runs one write at a time), and returns it. Making a key for it takes
/// it `Share` and deleting it `Update`, so a key is never made for an account being deleted
/// (it would fail its foreign key, or outlive the delete of the account's keys).
pub fn lock(
    conn: &mut DbConnection,
    project_id: &str,
    id: &str,
    lock: RowLock,
) -> QueryResult<Option<ServiceAccount>> {
    let DbConnection::Pg(pg) = conn else {
        return find(conn, project_id, id);
    };
    let query = service_accounts::table
        .filter(service_accounts::project_id.eq(project_id))
        .filter(service_accounts::id.eq(id))
        .select(ServiceAccount::as_select());
    match lock {
        RowLock::Share => query.for_share().first(pg).optional(),
        RowLock::Update => query.for_update().first(pg).optional(),
    }
}

/// A partial update: `None` leaves a column as it is.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = service_accounts)]
pub struct ServiceAccountChanges {
    pub name: Option<String>,
    pub role: Option<String>,
}

/// Inserts one service account.
pub fn insert(conn: &mut DbConnection, account: &ServiceAccount) -> QueryResult<()> {
    diesel::insert_into(service_accounts::table)
        .values(account)
        .execute(conn)
        .map(drop)
}

/// The service account `id` of `project_id`.
pub fn find(
    conn: &mut DbConnection,
    project_id: &str,
    id: &str,
) -> QueryResult<Option<ServiceAccount>> {
    service_accounts::table
        .filter(service_accounts::project_id.eq(project_id))
        .filter(service_accounts::id.eq(id))
        .select(ServiceAccount::as_select())
        .first(conn)
        .optional()
}

/// Applies `changes` to the service account `id` of `project_id`; the result, if it exists.
pub fn update(
    conn: &mut DbConnection,
    project_id: &str,
    id: &str,
    changes: &ServiceAccountChanges,
) -> QueryResult<Option<ServiceAccount>> {
    if changes.name.is_none() && changes.role.is_none() {
        return find(conn, project_id, id);
    }
    let updated = diesel::update(
        service_accounts::table
            .filter(service_accounts::project_id.eq(project_id))
            .filter(service_accounts::id.eq(id)),
    )
    .set(changes)
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    find(conn, project_id, id)
}

/// Deletes the service account `id` of `project_id` (its keys first: see
/// `project_api_key::delete_of_service_account`); whether it existed.
pub fn delete(conn: &mut DbConnection, project_id: &str, id: &str) -> QueryResult<bool> {
    diesel::delete(
        service_accounts::table
            .filter(service_accounts::project_id.eq(project_id))
            .filter(service_accounts::id.eq(id)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Up to `limit` service accounts of `project_id` after the one `after` (from the start with
/// `None`), in creation order. `None` if `after` is not one of the project's.
pub fn list_page(
    conn: &mut DbConnection,
    project_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Option<Vec<ServiceAccount>>> {
    let query = service_accounts::table
        .filter(service_accounts::project_id.eq(project_id))
        .order((service_accounts::created_at, service_accounts::id))
        .select(ServiceAccount::as_select())
        .limit(limit);
    let Some(after) = after else {
        return query.load(conn).map(Some);
    };
    let Some(created_at) = service_accounts::table
        .filter(service_accounts::project_id.eq(project_id))
        .filter(service_accounts::id.eq(after))
        .select(service_accounts::created_at)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    query
        .filter(
            service_accounts::created_at
                .gt(created_at)
                .or(service_accounts::created_at
                    .eq(created_at)
                    .and(service_accounts::id.gt(after))),
        )
        .load(conn)
        .map(Some)
}

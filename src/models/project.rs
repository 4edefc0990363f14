//! The `projects` table: OpenAI's projects, which hold members, service accounts, project keys
//! and per-model rate limits.
//!
//! Listing is keyset pagination over `(created_at, id)`, oldest first, like users. Archiving
//! sets `archived_at` once; nothing unsets it.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::models::admin_api_key::RowLock;
use crate::schema::projects;

/// A stored project.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// When the project was archived; `None` while it is active.
    pub archived_at: Option<i64>,
    pub external_key_id: Option<String>,
    /// One of upstream's residency names, as sent at creation.
    pub residency: Option<String>,
}

impl Project {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// A partial update: `None` leaves a column as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = projects)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub external_key_id: Option<Option<String>>,
}

impl ProjectChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.external_key_id.is_none()
    }
}

pub fn insert(conn: &mut DbConnection, project: &Project) -> QueryResult<()> {
    diesel::insert_into(projects::table)
        .values(project)
        .execute(conn)
        .map(drop)
}

/// One project.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Project>> {
    projects::table
        .filter(projects::id.eq(id))
        .select(Project::as_select())
        .first(conn)
        .optional()
}

/// The names of the projects `ids` (those that exist), as `(id, name)`.
pub fn names_of(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    projects::table
        .filter(projects::id.eq_any(ids))
        .select((projects::id, projects::name))
        .load(conn)
}

/// Locks the project `id` (if it exists) until the transaction ends, on PostgreSQL (SQLite
/// runs one write at a time), and returns it as locked. Changes inside a project (members,
/// rate limits, service accounts, keys) take it `Share`, so that archiving (`Update`) is
/// ordered before or after them, never in between. Locked after any key and user rows.
pub fn lock(conn: &mut DbConnection, id: &str, lock: RowLock) -> QueryResult<Option<Project>> {
    let DbConnection::Pg(pg) = conn else {
        return find(conn, id);
    };
    let query = projects::table
        .filter(projects::id.eq(id))
        .select(Project::as_select());
    match lock {
        RowLock::Share => query.for_share().first(pg).optional(),
        RowLock::Update => query.for_update().first(pg).optional(),
    }
}

/// Where the project `id` sits in the listing order, if it exists.
pub fn cursor_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(i64, String)>> {
    projects::table
        .filter(projects::id.eq(id))
        .select((projects::created_at, projects::id))
        .first(conn)
        .optional()
}

/// Up to `limit` projects after `after` (oldest first, ties by id); archived ones only when
/// `include_archived`.
pub fn list_page(
    conn: &mut DbConnection,
    after: Option<&(i64, String)>,
    limit: i64,
    include_archived: bool,
) -> QueryResult<Vec<Project>> {
    use crate::schema::projects::dsl::{archived_at, created_at, id};
    let mut query = projects::table
        .select(Project::as_select())
        .order((created_at.asc(), id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, after_id)) = after {
        query = query.filter(
            created_at
                .ge(*at)
                .and(created_at.gt(*at).or(id.gt(after_id.clone()))),
        );
    }
    if !include_archived {
        query = query.filter(archived_at.is_null());
    }
    query.load(conn)
}

/// Applies `changes` to a project.
pub fn update(conn: &mut DbConnection, id: &str, changes: &ProjectChanges) -> QueryResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    diesel::update(projects::table.filter(projects::id.eq(id)))
        .set(changes)
        .execute(conn)
        .map(drop)
}

/// Archives a project at `now` unless it is archived already.
pub fn archive(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(
        projects::table
            .filter(projects::id.eq(id))
            .filter(projects::archived_at.is_null()),
    )
    .set(projects::archived_at.eq(Some(now)))
    .execute(conn)
    .map(drop)
}

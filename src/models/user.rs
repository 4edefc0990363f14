//! The `users` table: the members of the organisation, who own admin keys.
//!
//! Listing is keyset pagination over `(created_at, id)`, oldest first, like the keys.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::domain::skeleton_of;
use crate::domain::{Permissions, Role};
use crate::models::admin_api_key::RowLock;
use crate::schema::users;

/// A stored user. `email` is stored normalised (see `domain::Email`), beside its confusable
/// skeleton (`email_skeleton`, written by [`insert`], not read by the row type).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: i64,
    pub enabled: bool,
    /// The ceiling of the user's keys' permissions downstream (see `domain::permissions`):
    /// `*` for owners, what an owner granted for readers.
    pub permissions: Permissions,
    /// Seed 000's member details (see `domain::member`, `domain::phone`): optional, and
    /// never read on the verification path.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164.
    pub phone_number: Option<String>,
}

impl User {
    pub fn role(&self) -> Role {
        Role::from_db(&self.role)
    }
}

/// A partial update: `None` leaves a column as it is.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub name: Option<String>,
    pub role: Option<String>,
    pub enabled: Option<bool>,
    pub permissions: Option<Permissions>,
    /// `Some(None)` clears the column.
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.role.is_none()
            && self.enabled.is_none()
            && self.permissions.is_none()
            && self.first_name.is_none()
            && self.last_name.is_none()
            && self.phone_number.is_none()
    }
}

/// Inserts one user, with the skeleton of their email.
pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<()> {
    let skeleton = user.email.as_deref().map(skeleton_of);
    diesel::insert_into(users::table)
        .values((user, users::email_skeleton.eq(skeleton)))
        .execute(conn)
        .map(drop)
}

/// One user.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Whether a member has this (normalised) email or a look-alike of it: one with the same
/// confusable skeleton.
pub fn email_taken(conn: &mut DbConnection, email: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::email_skeleton.eq(skeleton_of(email))),
    ))
    .get_result(conn)
}

/// Users with an email stored before skeletons were: `(id, email)`.
pub fn without_skeleton(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    users::table
        .filter(users::email_skeleton.is_null())
        .filter(users::email.is_not_null())
        .select((users::id, users::email.assume_not_null()))
        .load(conn)
}

/// Records the skeleton of the user `id`'s email.
pub fn set_skeleton(conn: &mut DbConnection, id: &str, skeleton: &str) -> QueryResult<()> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set(users::email_skeleton.eq(Some(skeleton)))
        .execute(conn)
        .map(drop)
}

/// Locks the rows of the users `ids` (those that exist) in id order until the transaction
/// ends, on PostgreSQL (SQLite runs one write at a time). Key rows, when a transaction locks
/// any, are locked before user rows.
pub fn lock(conn: &mut DbConnection, ids: &[&str], lock: RowLock) -> QueryResult<()> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let query = users::table
        .filter(users::id.eq_any(ids))
        .order(users::id)
        .select(users::id);
    match lock {
        RowLock::Share => query.for_share().load::<String>(pg)?,
        RowLock::Update => query.for_update().load::<String>(pg)?,
    };
    Ok(())
}

/// Where the user `id` sits in the listing order, if it exists.
pub fn cursor_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(i64, String)>> {
    users::table
        .filter(users::id.eq(id))
        .select((users::created_at, users::id))
        .first(conn)
        .optional()
}

/// Up to `limit` users after `after` (oldest first, ties by id), only those with one of
/// `emails` when it is not empty.
pub fn list_page(
    conn: &mut DbConnection,
    after: Option<&(i64, String)>,
    limit: i64,
    emails: &[String],
) -> QueryResult<Vec<User>> {
    use crate::schema::users::dsl::{created_at, email, id};
    let mut query = users::table
        .select(User::as_select())
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
    if !emails.is_empty() {
        query = query.filter(email.eq_any(emails.to_vec()));
    }
    query.load(conn)
}

/// Applies `changes` to a user; returns whether it exists.
pub fn update(conn: &mut DbConnection, id: &str, changes: &UserChanges) -> QueryResult<bool> {
    let target = users::table.filter(users::id.eq(id));
    if changes.is_empty() {
        return diesel::select(diesel::dsl::exists(target)).get_result(conn);
    }
    diesel::update(target)
        .set(changes)
        .execute(conn)
        .map(|updated| updated > 0)
}

/// Deletes a user (their keys must be gone first); returns whether it existed.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    diesel::delete(users::table.filter(users::id.eq(id)))
        .execute(conn)
        .map(|deleted| deleted > 0)
}

//! The `project_users` table: which organisation members belong to which project, and as
//! what (`owner` or `member`).
//!
//! Listing is keyset pagination over `(added_at, user_id)` within a project, oldest first.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::models::user::User;
use crate::schema::{project_users, users};

/// A stored membership.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = project_users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ProjectUser {
    pub project_id: String,
    pub user_id: String,
    /// `owner` or `member` (see `domain::ProjectRole`).
    pub role: String,
    pub added_at: i64,
}

pub fn insert(conn: &mut DbConnection, member: &ProjectUser) -> QueryResult<()> {
    diesel::insert_into(project_users::table)
        .values(member)
        .execute(conn)
        .map(drop)
}

/// The membership of `user_id` in `project_id`, with the user.
pub fn find(
    conn: &mut DbConnection,
    project_id: &str,
    user_id: &str,
) -> QueryResult<Option<(ProjectUser, User)>> {
    project_users::table
        .inner_join(users::table)
        .filter(project_users::project_id.eq(project_id))
        .filter(project_users::user_id.eq(user_id))
        .select((ProjectUser::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// Where the member `user_id` sits in the listing of `project_id`, if they belong to it.
pub fn cursor_of(
    conn: &mut DbConnection,
    project_id: &str,
    user_id: &str,
) -> QueryResult<Option<(i64, String)>> {
    project_users::table
        .filter(project_users::project_id.eq(project_id))
        .filter(project_users::user_id.eq(user_id))
        .select((project_users::added_at, project_users::user_id))
        .first(conn)
        .optional()
}

/// Up to `limit` members of `project_id` after `after` (oldest first, ties by user id), with
/// their users.
pub fn list_page(
    conn: &mut DbConnection,
    project_id: &str,
    after: Option<&(i64, String)>,
    limit: i64,
) -> QueryResult<Vec<(ProjectUser, User)>> {
    use crate::schema::project_users::dsl::{added_at, user_id};
    let mut query = project_users::table
        .inner_join(users::table)
        .filter(project_users::project_id.eq(project_id))
        .select((ProjectUser::as_select(), User::as_select()))
        .order((added_at.asc(), user_id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, after_id)) = after {
        query = query.filter(
            added_at
                .ge(*at)
                .and(added_at.gt(*at).or(user_id.gt(after_id.clone()))),
        );
    }
    query.load(conn)
}

/// Sets the role of a membership.
pub fn set_role(
    conn: &mut DbConnection,
    project_id: &str,
    user_id: &str,
    role: &str,
) -> QueryResult<()> {
    diesel::update(
        project_users::table
            .filter(project_users::project_id.eq(project_id))
            .filter(project_users::user_id.eq(user_id)),
    )
    .set(project_users::role.eq(role))
    .execute(conn)
    .map(drop)
}

/// Removes a membership; returns whether it existed.
pub fn delete(conn: &mut DbConnection, project_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::delete(
        project_users::table
            .filter(project_users::project_id.eq(project_id))
            .filter(project_users::user_id.eq(user_id)),
    )
    .execute(conn)
    .map(|deleted| deleted > 0)
}

/// Removes every membership of `user_id` (before the user is deleted); returns the projects
/// they belonged to.
pub fn delete_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<String>> {
    let projects = project_users::table
        .filter(project_users::user_id.eq(user_id))
        .select(project_users::project_id)
        .order(project_users::project_id)
        .load::<String>(conn)?;
    diesel::delete(project_users::table.filter(project_users::user_id.eq(user_id)))
        .execute(conn)?;
    Ok(projects)
}

//! The `users` table: the owners of admin keys.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::schema::users;

/// A stored user.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: i64,
}

/// Inserts one user.
pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(drop)
}

//! The `users` table: the owners of admin keys.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::schema::users;

/// A stored user.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: i64,
}

/// A user to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub created_at: i64,
}

/// Inserts one user.
pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(drop)
}

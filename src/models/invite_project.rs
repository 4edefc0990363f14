//! The `invite_projects` table: the projects an invite grants, each with the role the
//! invitee gets there. Rows go with their invite (`ON DELETE CASCADE`).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::schema::invite_projects;

/// One project an invite grants.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = invite_projects)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct InviteProject {
    pub invite_id: String,
    pub project_id: String,
    /// `owner` or `member`.
    pub role: String,
}

/// Inserts the projects of one invite (a row at a time: at most 100, and a multi-row insert
/// has no form common to both backends).
pub fn insert_all(conn: &mut DbConnection, rows: &[InviteProject]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(invite_projects::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The projects of the invites `invite_ids`, by invite, then project id.
pub fn of_invites(conn: &mut DbConnection, invite_ids: &[&str]) -> QueryResult<Vec<InviteProject>> {
    if invite_ids.is_empty() {
        return Ok(Vec::new());
    }
    invite_projects::table
        .filter(invite_projects::invite_id.eq_any(invite_ids))
        .order((invite_projects::invite_id, invite_projects::project_id))
        .select(InviteProject::as_select())
        .load(conn)
}

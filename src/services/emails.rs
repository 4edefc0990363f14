//! The confusable skeletons of stored emails (see `domain::Email`), which the "already a
//! member" and "already invited" checks compare.
//!
//! Policy: a skeleton needs Unicode's confusables table, which SQL does not have, so the
//! migration that added the columns left them empty on existing rows. Every membership change
//! that compares emails (an invite made, an invite accepted, a bootstrapped owner) first calls
//! [`fill_missing`], under the membership lock and in its own transaction: on the first such
//! change after an upgrade it fills in every empty skeleton (one query finds them; none
//! afterwards), so no comparison ever meets a row without one.

use diesel::QueryResult;

use crate::db::DbConnection;
use crate::domain::skeleton_of;
use crate::models::{invite, user};

/// Fills in the skeleton of every member and invite stored without one; returns how many.
pub fn fill_missing(conn: &mut DbConnection) -> QueryResult<usize> {
    let users = user::without_skeleton(conn)?;
    for (id, email) in &users {
        user::set_skeleton(conn, id, &skeleton_of(email))?;
    }
    let invites = invite::without_skeleton(conn)?;
    for (id, email) in &invites {
        invite::set_skeleton(conn, id, &skeleton_of(email))?;
    }
    let filled = users.len() + invites.len();
    if filled > 0 {
        tracing::info!(
            filled,
            "filled in the email skeletons of rows stored before them"
        );
    }
    Ok(filled)
}

//! The `invites` table: pending, accepted and expired invitations to join the organisation.
//!
//! An invite's accept token is stored only as its SHA-256 (`token_hash`), which the row type
//! does not even read. Listing is keyset pagination over `(created_at, id)`, oldest first,
//! like the users.

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::domain::Role;
use crate::schema::invites;

/// A stored invite, without its token hash. `email` is stored normalised (`domain::Email`),
/// beside its confusable skeleton (`email_skeleton`, which the row type does not read).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = invites)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Invite {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub user_id: Option<String>,
    /// The key that made it (`None` for invites made before keys were recorded).
    pub invited_by_key: Option<String>,
    /// Member details the invite carries (seed 000); the member's on acceptance.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
}

/// Where an invite stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    /// Neither accepted nor expired: its token can still be used.
    Pending,
    /// Accepted: it became a member.
    Accepted,
    /// Its `expires_at` has passed unaccepted; its token is refused.
    Expired,
}

impl Invite {
    pub fn role(&self) -> Role {
        Role::from_db(&self.role)
    }

    /// Accepted once `accepted_at` is set, otherwise expired from `expires_at` on.
    pub fn status(&self, now: i64) -> InviteStatus {
        if self.accepted_at.is_some() {
            InviteStatus::Accepted
        } else if now >= self.expires_at {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        }
    }
}

/// An invite to insert (pending).
#[derive(Debug, Insertable)]
#[diesel(table_name = invites)]
pub struct NewInvite<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
    pub invited_by: Option<&'a str>,
    pub invited_by_key: Option<&'a str>,
    pub email_skeleton: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub phone_number: Option<&'a str>,
}

/// Inserts one invite and returns it as stored.
pub fn insert(conn: &mut DbConnection, new: &NewInvite<'_>) -> QueryResult<Invite> {
    diesel::insert_into(invites::table)
        .values(new)
        .execute(conn)?;
    Ok(Invite {
        id: new.id.to_owned(),
        email: new.email.to_owned(),
        role: new.role.to_owned(),
        created_at: new.created_at,
        expires_at: new.expires_at,
        accepted_at: None,
        user_id: None,
        invited_by_key: new.invited_by_key.map(str::to_owned),
        first_name: new.first_name.map(str::to_owned),
        last_name: new.last_name.map(str::to_owned),
        phone_number: new.phone_number.map(str::to_owned),
    })
}

/// One invite.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Invite>> {
    invites::table
        .filter(invites::id.eq(id))
        .select(Invite::as_select())
        .first(conn)
        .optional()
}

/// The invite whose accept token has this hash.
pub fn find_by_token_hash(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<Invite>> {
    invites::table
        .filter(invites::token_hash.eq(token_hash))
        .select(Invite::as_select())
        .first(conn)
        .optional()
}

/// Whether an invite for an email with this confusable skeleton is pending at `now`.
pub fn pending_for(conn: &mut DbConnection, skeleton: &str, now: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        invites::table
            .filter(invites::email_skeleton.eq(skeleton))
            .filter(invites::accepted_at.is_null())
            .filter(invites::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// The member who made the invite `id` (`None` if it is gone or was never recorded).
pub fn inviter_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<String>> {
    invites::table
        .filter(invites::id.eq(id))
        .select(invites::invited_by)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Deletes the invites `user_id` made that nobody accepted yet; returns their ids.
pub fn delete_unaccepted_by(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<String>> {
    let unaccepted = invites::table
        .filter(invites::invited_by.eq(user_id))
        .filter(invites::accepted_at.is_null());
    let ids = unaccepted
        .select(invites::id)
        .order(invites::id)
        .load(conn)?;
    diesel::delete(unaccepted).execute(conn)?;
    Ok(ids)
}

/// Deletes the invites the key `key_id` made that are pending at `now`; returns their ids.
pub fn delete_pending_by_key(
    conn: &mut DbConnection,
    key_id: &str,
    now: i64,
) -> QueryResult<Vec<String>> {
    let pending = invites::table
        .filter(invites::invited_by_key.eq(key_id))
        .filter(invites::accepted_at.is_null())
        .filter(invites::expires_at.gt(now));
    let ids = pending.select(invites::id).order(invites::id).load(conn)?;
    diesel::delete(invites::table.filter(invites::id.eq_any(&ids))).execute(conn)?;
    Ok(ids)
}

/// Hands the invites the key `from` made that are pending at `now` over to the key `to`;
/// returns how many.
pub fn hand_over_pending(
    conn: &mut DbConnection,
    from: &str,
    to: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        invites::table
            .filter(invites::invited_by_key.eq(from))
            .filter(invites::accepted_at.is_null())
            .filter(invites::expires_at.gt(now)),
    )
    .set(invites::invited_by_key.eq(Some(to)))
    .execute(conn)
}

/// Invites stored before skeletons were: `(id, email)`.
pub fn without_skeleton(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    invites::table
        .filter(invites::email_skeleton.is_null())
        .select((invites::id, invites::email))
        .load(conn)
}

/// Records the skeleton of the invite `id`'s email.
pub fn set_skeleton(conn: &mut DbConnection, id: &str, skeleton: &str) -> QueryResult<()> {
    diesel::update(invites::table.filter(invites::id.eq(id)))
        .set(invites::email_skeleton.eq(Some(skeleton)))
        .execute(conn)
        .map(drop)
}

/// Marks a not yet accepted invite accepted by `user_id`; returns whether it was pending.
pub fn mark_accepted(
    conn: &mut DbConnection,
    id: &str,
    user_id: &str,
    at: i64,
) -> QueryResult<bool> {
    diesel::update(
        invites::table
            .filter(invites::id.eq(id))
            .filter(invites::accepted_at.is_null()),
    )
    .set((
        invites::accepted_at.eq(Some(at)),
        invites::user_id.eq(Some(user_id)),
    ))
    .execute(conn)
    .map(|updated| updated > 0)
}

/// Deletes an invite; returns whether it existed.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    diesel::delete(invites::table.filter(invites::id.eq(id)))
        .execute(conn)
        .map(|deleted| deleted > 0)
}

/// Where the invite `id` sits in the listing order, if it exists.
pub fn cursor_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(i64, String)>> {
    invites::table
        .filter(invites::id.eq(id))
        .select((invites::created_at, invites::id))
        .first(conn)
        .optional()
}

/// Up to `limit` invites after `after` (oldest first, ties by id).
pub fn list_page(
    conn: &mut DbConnection,
    after: Option<&(i64, String)>,
    limit: i64,
) -> QueryResult<Vec<Invite>> {
    use crate::schema::invites::dsl::{created_at, id};
    let mut query = invites::table
        .select(Invite::as_select())
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
    query.load(conn)
}

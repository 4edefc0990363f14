//! The lock-out guard: no change may leave the organisation without someone able to run it.
//!
//! Policy: after a guarded change (deleting, disabling, rotating or re-scoping a key; deleting,
//! demoting or disabling a user) there must remain an enabled owner holding an enabled key that
//! has both `admin_api_keys.write` and `users.write` and stays valid at least
//! [`GUARD_MIN_REMAINING_SECONDS`]; otherwise the change is undone and refused with 409
//! (unless there was no such key before the change either: then nothing is refused, so an
//! organisation without one can still disable a leaked key, and `bootstrap` makes a new
//! owner). On
//! PostgreSQL the guard's advisory lock serialises guarded changes, so two concurrent
//! disables cannot each count on the other key; SQLite runs one write at a time anyway.

use diesel::Connection;

use crate::db::DbConnection;
use crate::error::ApiError;
use crate::models::admin_api_key;

/// A key only counts for the guard if it stays valid at least this long (5 minutes):
/// otherwise rotating the last admin key into a 1-second key would pass the guard and lock
/// the organisation out a moment later.
pub const GUARD_MIN_REMAINING_SECONDS: i64 = 300;

/// What a guarded change does, for its 409.
#[derive(Clone, Copy, Debug)]
pub enum Guarded {
    /// A change of a key (`rotate`, `change`, `delete`).
    Key(&'static str),
    /// A change of a user (`change`, `delete`).
    User(&'static str),
}

/// Runs `change` in a savepoint (so a refusal undoes it) under the guard's lock, and refuses
/// it with 409 if afterwards no one could run the organisation. `change` authorizes its
/// caller itself, after the lock is taken, so locks are always taken in one order. With
/// `enforce` false (an operator's `--force`, see `services::caller::Principal::guarded`) the
/// lock is still taken but nothing is refused.
pub fn keep_an_admin<T>(
    conn: &mut DbConnection,
    now: i64,
    what: Guarded,
    enforce: bool,
    change: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    conn.transaction(|conn| {
        admin_api_key::lock_key_guard(conn)?;
        let valid_at = now + GUARD_MIN_REMAINING_SECONDS;
        // Only a change that ends the last admin is refused: where none is left already
        // (after an upgrade, say), changes such as disabling a leaked key must still work.
        let before = enforce && admin_api_key::any_active_admin(conn, valid_at)?;
        let result = change(conn)?;
        if before && !admin_api_key::any_active_admin(conn, valid_at)? {
            return Err(refusal(what));
        }
        Ok::<_, ApiError>(result)
    })
}

fn refusal(what: Guarded) -> ApiError {
    let (message, code) = match what {
        Guarded::Key(verb) => (format!("Refusing to {verb} this key: "), "last_admin_key"),
        Guarded::User(verb) => (format!("Refusing to {verb} this user: "), "last_owner"),
    };
    ApiError::Conflict {
        message: format!(
            "{message}no enabled owner would be left holding an enabled key with \
             `admin_api_keys.write` and `users.write` that stays valid for at least \
             {GUARD_MIN_REMAINING_SECONDS} seconds. Create or enable another such key (or \
             owner) first; if every one is lost, `admin-api-keys bootstrap` makes a new owner."
        ),
        code,
    }
}

//! Cross-replica cache invalidation over PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Policy: the database announces every change that matters to the auth cache. Triggers on
//! `admin_api_keys` (migration `notify_auth_changes`) send `NOTIFY admin_api_keys_auth` with
//! `changed:<key id>` when a key is deleted or any column but `last_used_at` changes, and
//! `created:<key id>` when a key is inserted; usage flushes stay silent. The trigger fires
//! inside the writing transaction, so the notification goes out on commit, whoever committed:
//! this service, another replica, or an operator's `psql`.
//!
//! Each replica listens on one dedicated connection (outside the pool) on a thread of its own.
//! libpq delivers notifications on that connection only when it reads from the socket, so the
//! thread polls every [`POLL_INTERVAL`] and pings the server every [`PING_INTERVAL`] to notice a
//! connection that died quietly. While the connection is down the cache is bypassed; once it is
//! back the cache is emptied, since anything sent in between was lost. The thread ends when the
//! cache it serves is dropped.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, ConnectionError, QueryResult};

use crate::auth_cache::AuthCache;
use crate::error::error_chain;

/// What the listener's session calls itself in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "admin-api-keys invalidation listener";
/// The channel the triggers notify.
pub const CHANNEL: &str = "admin_api_keys_auth";
/// How often the listener reads pending notifications.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the listener checks that its connection is alive.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a notification asks of the cache.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalidation<'a> {
    /// A key was inserted: its hash may sit in the unknown-hash cache.
    Created,
    /// A key changed or was deleted.
    Changed(&'a str),
    /// A payload this version does not understand: drop everything to be safe.
    Unrecognised,
}

impl<'a> Invalidation<'a> {
    pub fn parse(payload: &'a str) -> Self {
        match payload.split_once(':') {
            Some(("created", _)) => Self::Created,
            Some(("changed", id)) if !id.is_empty() => Self::Changed(id),
            _ => Self::Unrecognised,
        }
    }

    /// Applies this invalidation to `cache`.
    pub fn apply(&self, cache: &AuthCache) {
        match self {
            Self::Created => cache.forget_unknown(),
            Self::Changed(key_id) => cache.forget_key(key_id),
            Self::Unrecognised => cache.reset(true),
        }
    }
}

/// Opens a connection and subscribes it to [`CHANNEL`].
pub fn listen(url: &str) -> Result<PgConnection, ConnectionError> {
    let mut conn = PgConnection::establish(url)?;
    conn.batch_execute(&format!(
        "SET application_name = '{APPLICATION_NAME}'; LISTEN {CHANNEL}"
    ))
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Runs the listener on its own thread, starting from `conn`, already listening.
pub fn spawn(url: String, conn: PgConnection, cache: &Arc<AuthCache>) -> std::io::Result<()> {
    let cache = Arc::downgrade(cache);
    thread::Builder::new()
        .name("auth-invalidation".into())
        .spawn(move || run(&url, conn, &cache))
        .map(drop)
}

fn run(url: &str, mut conn: PgConnection, cache: &Weak<AuthCache>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match pump(&mut conn, cache) {
            Ok(()) => return,
            Err(e) => {
                let Some(cache) = cache.upgrade() else { return };
                cache.reset(false);
                tracing::warn!(error = %error_chain(&e), "lost the invalidation listener; bypassing the auth cache until it is back");
            }
        }
        conn = loop {
            thread::sleep(backoff);
            if cache.strong_count() == 0 {
                return;
            }
            match listen(url) {
                Ok(conn) => break conn,
                Err(e) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tracing::warn!(error = %error_chain(&e), "cannot reconnect the invalidation listener");
                }
            }
        };
        backoff = Duration::from_millis(100);
        let Some(cache) = cache.upgrade() else { return };
        cache.reset(true);
        tracing::info!("invalidation listener reconnected; auth cache emptied");
    }
}

/// Applies notifications until the connection fails (`Err`) or the cache is gone (`Ok`).
fn pump(conn: &mut PgConnection, cache: &Weak<AuthCache>) -> QueryResult<()> {
    let mut last_ping = Instant::now();
    loop {
        let Some(cache) = cache.upgrade() else {
            return Ok(());
        };
        for notification in conn.notifications_iter() {
            Invalidation::parse(&notification?.payload).apply(&cache);
        }
        drop(cache);
        if last_ping.elapsed() >= PING_INTERVAL {
            conn.batch_execute("SELECT 1")?;
            last_ping = Instant::now();
        }
        thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_invalidations() {
        let cases = [
            ("created:key_1", Invalidation::Created),
            ("changed:key_1", Invalidation::Changed("key_1")),
            ("changed:", Invalidation::Unrecognised),
            ("renamed:key_1", Invalidation::Unrecognised),
            ("", Invalidation::Unrecognised),
        ];
        for (payload, expected) in cases {
            assert_eq!(Invalidation::parse(payload), expected, "{payload:?}");
        }
    }
}

//! Cross-replica cache invalidation over PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Policy: the database announces every change that matters to the caches. Triggers on
//! `admin_api_keys` (migrations `notify_auth_changes`, `live_hashes`) send
//! `NOTIFY admin_api_keys_auth` with `changed:<key id>` when a key is deleted or any column but
//! `last_used_at` changes, `live:<hash prefix>` when a key is inserted or its hash rewritten,
//! `gone:<hash prefix>` when a key is deleted or its hash rewritten (the prefix is the first 16
//! hex digits of the stored hash: what the set of live hashes holds, see `keyset`), and
//! `reset:` when the table is truncated; usage flushes stay silent. Triggers on `users` (migration
//! `users_roles_invites`) send `user:<user id>` when a user is changed or deleted. Project keys
//! (migration `project_keys_notify`) send `live:`, `gone:` and `changed:` as admin keys do; a
//! change to who may use a project's keys (a project archived or changed, a member added,
//! changed or removed, a service account changed or deleted) sends `project:<project id>`. The trigger fires
//! inside the writing transaction, so the notification goes out on commit, whoever committed:
//! this service, another replica, or an operator's `psql`.
//!
//! Each replica listens on one dedicated connection (outside the pool) on a thread of its own.
//! libpq delivers notifications on that connection only when it reads from the socket, so the
//! thread polls every [`POLL_INTERVAL`]. Every [`PING_INTERVAL`] it runs `SELECT 1` on the same
//! connection, applies what arrived with the answer, and renews the cache's lease to
//! [`LEASE`] after the ping started: whatever committed before that instant has been applied.
//! A connection that died quietly (or a thread stuck on it) stops renewing, and the cache is
//! bypassed once the lease runs out, so a change is honoured within about a second even then.
//! A connection that fails empties the cache and bypasses it until the listener is back; the
//! listener tries to reconnect every [`RECONNECT_INTERVAL`], however long the database has
//! been away, so the caches are in use again within a fraction of a second of its return.
//! A burst of more than [`BULK`] notifications in one poll (an operator's mass `UPDATE`)
//! empties the cache instead of dropping entries one by one (hash payloads are still applied
//! one by one: the set of live hashes is not a cache that can be emptied). Whatever marked the
//! set stale (a lost connection, `reset:`, a payload this version does not know) has it
//! reloaded from the database before the next ping renews the lease. Each applied ping also
//! tells requests waiting on a hash not in the set that the set is now as new as that ping
//! (`Cache::synced_through`). The thread ends when the cache it serves is dropped.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::{Connection, ConnectionError, QueryResult};

use super::keyset::prefix_of_hex;
use super::{Cache, Invalidation};
use crate::error::error_chain;
use crate::metrics::{self, InvalidationKind};

/// What the listener's session calls itself in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "admin-api-keys invalidation listener";
/// The channel the triggers notify.
pub const CHANNEL: &str = "admin_api_keys_auth";
/// How often the listener reads pending notifications.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the listener proves its connection alive.
pub const PING_INTERVAL: Duration = Duration::from_millis(250);
/// How long after a successful ping the cache may be used without another.
pub const LEASE: Duration = Duration::from_secs(1);
/// More notifications than this in one poll empty the cache instead.
pub const BULK: usize = 64;
/// How often a lost listener tries to reconnect. Constant, not a growing backoff: while it is
/// away the caches are bypassed (every request costs a lookup), and a backoff grown during a
/// long outage would keep them bypassed for seconds after the database is back. An attempt
/// against a database that is down is one refused connection, or at most libpq's
/// `connect_timeout` (`db::CONNECT_TIMEOUT_SECS`).
pub const RECONNECT_INTERVAL: Duration = crate::db::RECONNECT_INTERVAL;

/// What a notification payload asks of the cache: `live:<prefix>`, `gone:<prefix>`,
/// `changed:<id>`, `user:<id>`, `project:<id>` or `reset:`.
/// A payload this version does not understand (among them `created:<id>` of the first
/// trigger, which names no hash) drops everything and reloads the set, to be safe.
pub fn parse(payload: &str) -> Invalidation {
    let prefix = |hex: &str| (hex.len() == 16).then(|| prefix_of_hex(hex)).flatten();
    match payload.split_once(':') {
        Some(("live", hex)) => prefix(hex).map_or(Invalidation::All, Invalidation::KeyCreated),
        Some(("gone", hex)) => prefix(hex).map_or(Invalidation::All, Invalidation::KeyDeleted),
        Some(("changed", id)) if !id.is_empty() => Invalidation::Key(id.to_owned()),
        Some(("user", id)) if !id.is_empty() => Invalidation::User(id.to_owned()),
        Some(("project", id)) if !id.is_empty() => Invalidation::Project(id.to_owned()),
        _ => Invalidation::All,
    }
}

/// Opens a connection and subscribes it to [`CHANNEL`].
pub fn listen(url: &str) -> Result<PgConnection, ConnectionError> {
    crate::db::init_libpq_tls();
    let mut conn = PgConnection::establish(&crate::db::with_connect_timeout(url))?;
    conn.batch_execute(&format!(
        "SET application_name = '{APPLICATION_NAME}'; LISTEN {CHANNEL}"
    ))
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Runs the listener on its own thread, starting from `conn`, already listening.
pub fn spawn(url: String, conn: PgConnection, cache: &Arc<Cache>) -> std::io::Result<()> {
    let cache = Arc::downgrade(cache);
    thread::Builder::new()
        .name("auth-invalidation".into())
        .spawn(move || run(&url, conn, &cache))
        .map(drop)
}

fn run(url: &str, mut conn: PgConnection, cache: &Weak<Cache>) {
    loop {
        match pump(&mut conn, cache) {
            Ok(()) => return,
            Err(e) => {
                let Some(cache) = cache.upgrade() else { return };
                cache.distrust();
                metrics::listener_lost();
                tracing::warn!(error = %error_chain(&e), "lost the invalidation listener; bypassing the caches until it is back");
            }
        }
        let mut attempts = 0u32;
        conn = loop {
            thread::sleep(RECONNECT_INTERVAL);
            if cache.strong_count() == 0 {
                return;
            }
            match listen(url) {
                Ok(conn) => break conn,
                // One line when it starts failing and then one every ~10 s, not 4 a second.
                Err(e) if attempts.is_multiple_of(40) => {
                    tracing::warn!(error = %error_chain(&e), attempts, "cannot reconnect the invalidation listener; retrying");
                }
                Err(_) => {}
            }
            attempts = attempts.wrapping_add(1);
        };
        let Some(cache) = cache.upgrade() else { return };
        cache.reset();
        cache.renew_lease(Instant::now() + LEASE);
        metrics::listener_reconnected();
        tracing::info!("invalidation listener reconnected; caches emptied");
    }
}

/// Applies notifications until the connection fails (`Err`) or the cache is gone (`Ok`).
fn pump(conn: &mut PgConnection, cache: &Weak<Cache>) -> QueryResult<()> {
    let mut last_ping = Instant::now();
    loop {
        let Some(cache) = cache.upgrade() else {
            return Ok(());
        };
        apply_pending(conn, &cache)?;
        if last_ping.elapsed() >= PING_INTERVAL {
            let started = Instant::now();
            conn.batch_execute("SELECT 1")?;
            apply_pending(conn, &cache)?;
            cache.renew_lease(started + LEASE);
            cache.synced_through(started);
            last_ping = started;
        }
        drop(cache);
        thread::sleep(POLL_INTERVAL);
    }
}

/// Applies the notifications that have arrived, then reloads the set of live hashes if
/// anything marked it stale.
fn apply_pending(conn: &mut PgConnection, cache: &Cache) -> QueryResult<()> {
    let payloads = conn
        .notifications_iter()
        .map(|notification| notification.map(|n| n.payload))
        .collect::<QueryResult<Vec<_>>>()?;
    apply_payloads(cache, &payloads);
    if cache.keys_need_reload() {
        let started = Instant::now();
        match cache.reload_keys() {
            Ok(()) => tracing::info!(
                live_hashes = cache.key_set_size().0,
                elapsed = ?started.elapsed(),
                "reloaded the set of live key hashes"
            ),
            Err(e) => {
                tracing::warn!(error = %error_chain(&*e), "cannot reload the set of live key hashes; looking up unknown hashes on the clients' budgets until it is back");
            }
        }
    }
    Ok(())
}

/// Applies `payloads`: each hash payload to the set, and the rest one by one unless there are
/// more than [`BULK`], which empty the bounded caches instead.
fn apply_payloads(cache: &Cache, payloads: &[String]) {
    let (hashes, others): (Vec<_>, Vec<_>) = payloads
        .iter()
        .map(|p| parse(p))
        .inspect(|invalidation| metrics::invalidation_received(kind_of(invalidation)))
        .partition(|i| matches!(i, Invalidation::KeyCreated(_) | Invalidation::KeyDeleted(_)));
    for invalidation in &hashes {
        cache.apply(invalidation);
    }
    if others.len() <= BULK {
        for invalidation in &others {
            cache.apply(invalidation);
        }
    } else if others.contains(&Invalidation::All) {
        cache.reset();
    } else {
        cache.reset_bounded();
    }
}

/// The metrics' name for what `invalidation` asks.
fn kind_of(invalidation: &Invalidation) -> InvalidationKind {
    match invalidation {
        Invalidation::KeyCreated(_) => InvalidationKind::KeyCreated,
        Invalidation::KeyDeleted(_) => InvalidationKind::KeyDeleted,
        Invalidation::Key(_) | Invalidation::Views(_) => InvalidationKind::Key,
        Invalidation::User(_) => InvalidationKind::User,
        Invalidation::Project(_) => InvalidationKind::Project,
        Invalidation::All => InvalidationKind::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_invalidations() {
        let cases = [
            (
                "live:0123456789abcdef",
                Invalidation::KeyCreated(0x0123_4567_89ab_cdef),
            ),
            ("gone:FFFFFFFFFFFFFFFF", Invalidation::KeyDeleted(u64::MAX)),
            ("live:0123", Invalidation::All),
            ("live:0123456789abcdef00", Invalidation::All),
            ("gone:+123456789abcdef", Invalidation::All),
            ("gone:", Invalidation::All),
            ("created:key_1", Invalidation::All),
            ("changed:key_1", Invalidation::Key("key_1".into())),
            ("changed:", Invalidation::All),
            ("user:user_1", Invalidation::User("user_1".into())),
            ("user:", Invalidation::All),
            ("project:proj_1", Invalidation::Project("proj_1".into())),
            ("project:", Invalidation::All),
            ("reset:", Invalidation::All),
            ("renamed:key_1", Invalidation::All),
            ("", Invalidation::All),
        ];
        for (payload, expected) in cases {
            assert_eq!(parse(payload), expected, "{payload:?}");
        }
    }

    #[test]
    fn hash_payloads_reach_the_set_even_in_a_burst() {
        let cache = Cache::new(super::super::CacheOptions::default());
        cache.load_keys(super::super::KeySet::from_prefixes(&[1, 2]), 0);
        let mut payloads: Vec<String> = (0..2 * BULK).map(|n| format!("changed:key_{n}")).collect();
        payloads.push("gone:0000000000000001".into());
        payloads.push("live:00000000000000ff".into());
        apply_payloads(&cache, &payloads);
        assert_eq!(cache.presence(1), super::super::Presence::Absent);
        assert_eq!(cache.presence(2), super::super::Presence::Live);
        assert_eq!(cache.presence(0xff), super::super::Presence::Live);
        assert!(!cache.keys_stale(), "a burst of key changes keeps the set");
        apply_payloads(&cache, &["reset:".to_owned()]);
        assert!(cache.keys_stale(), "a truncate reloads it");
    }
}

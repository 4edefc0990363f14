//! Without a listener (SQLite), the watcher that notices commits made behind the service's back.
//!
//! Policy: on SQLite every write of this service goes through the one writer connection, so
//! `PRAGMA data_version` read on that connection changes only when another connection has
//! committed: `bootstrap` or the command line in another process, an operator's `sqlite3`.
//! Every [`PING_INTERVAL`] the watcher reads it through the writer. When it moved, the caches
//! may be wrong: they are emptied and the set of live hashes is reloaded (until then it vouches
//! for no absence, so hashes not in it are looked up on the clients' budgets). After each read
//! the watcher reports, as the PostgreSQL listener does after each ping, that everything
//! committed before the read started is in the caches (`Cache::synced_through`). So a request
//! presenting a hash that is not in the set waits for the next read before it is refused, and
//! a key that `bootstrap` made a moment ago works on its first request. A watcher that cannot
//! read (the writer is stuck or gone) stops reporting, and those requests fall back to a
//! budgeted lookup after [`super::invalidation::LEASE`].

use std::sync::{Arc, Weak};
use std::time::Instant;

use super::Cache;
use super::invalidation::PING_INTERVAL;
use crate::db::{self, WriteKind, Writer};
use crate::error::{ApiError, error_chain};

/// `PRAGMA data_version` through the writer; `None` on PostgreSQL.
pub async fn data_version(writer: &Writer) -> Result<Option<i64>, ApiError> {
    writer
        .run(
            WriteKind::Statement,
            |conn| Ok(db::data_version(conn)?),
            |_| {},
        )
        .await
}

/// Watches from `baseline` (read before the set of live hashes was loaded) until the cache is
/// dropped. Marks the cache as watched first.
pub async fn watch(writer: Writer, cache: &Arc<Cache>, mut baseline: i64) {
    cache.watched();
    let cache: Weak<Cache> = Arc::downgrade(cache);
    let mut failing = false;
    loop {
        actix_web::rt::time::sleep(PING_INTERVAL).await;
        let started = Instant::now();
        let read = data_version(&writer).await;
        let Some(cache) = cache.upgrade() else { return };
        let version = match read {
            Ok(Some(version)) => version,
            Ok(None) => return,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %error_chain(&e), "cannot read the database's data version; unknown keys are looked up on the clients' budgets until it answers");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        if version != baseline {
            crate::metrics::invalidation_received(crate::metrics::InvalidationKind::ExternalCommit);
            // Stale first: from here on, the set vouches for no absence until reloaded.
            cache.reset();
            let reloading = Arc::clone(&cache);
            match actix_web::web::block(move || reloading.reload_keys()).await {
                Ok(Ok(())) => {
                    baseline = version;
                    tracing::info!(
                        live_hashes = cache.key_set_size().0,
                        "the database was changed by another process; caches emptied and the set of live key hashes reloaded"
                    );
                }
                // Tried again on the next read (the baseline has not moved).
                Ok(Err(e)) => {
                    tracing::warn!(error = %error_chain(&*e), "cannot reload the set of live key hashes")
                }
                Err(e) => tracing::warn!(error = %e, "cannot reload the set of live key hashes"),
            }
        }
        cache.synced_through(started);
    }
}

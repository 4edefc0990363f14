//! `last_used_at` bookkeeping without a database write per request.
//!
//! Policy: authentication records the latest use of each key in memory; a background task
//! writes the batch at a bounded interval and once more on graceful shutdown. Responses of this
//! process overlay the pending value, so a caller sees its own use at once. An entry leaves
//! memory only after the database holds it (or something newer), so a response never shows an
//! older value than one it showed before. Writes only ever move `last_used_at` forward, so
//! replicas flushing the same key in any order converge on the latest use.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth_cache::AuthCache;
use crate::db::{DbPool, run_blocking};
use crate::error::{ApiError, error_chain};
use crate::models::admin_api_key;

/// Latest uses not yet written to the database, by key id.
#[derive(Debug, Default)]
pub struct UsageTracker {
    pending: Mutex<HashMap<String, i64>>,
}

impl UsageTracker {
    /// Notes that `key_id` authenticated a request at `at`.
    pub fn record(&self, key_id: &str, at: i64) {
        let mut pending = self.lock();
        match pending.get_mut(key_id) {
            Some(latest) => *latest = (*latest).max(at),
            None => {
                pending.insert(key_id.to_owned(), at);
            }
        }
    }

    /// The later of the stored value and a pending use of `key_id`.
    pub fn overlay(&self, key_id: &str, stored: Option<i64>) -> Option<i64> {
        let pending = self.lock().get(key_id).copied();
        stored.max(pending)
    }

    /// How many keys have a use waiting to be written.
    pub fn pending_len(&self) -> usize {
        self.lock().len()
    }

    /// Writes all pending uses in one statement. On failure they stay pending for the next try.
    /// Cached views of the written keys are dropped after the write and before the pending
    /// uses, so that once a pending use is forgotten no response falls back to an older
    /// `last_used_at`.
    pub async fn flush(&self, pool: &DbPool, cache: &AuthCache) -> Result<usize, ApiError> {
        let batch: Vec<(String, i64)> = self
            .lock()
            .iter()
            .map(|(id, at)| (id.clone(), *at))
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let written = batch.clone();
        run_blocking(pool, move |conn| {
            Ok(admin_api_key::record_last_used(conn, &written)?)
        })
        .await?;
        cache.forget_views(batch.iter().map(|(id, _)| id.as_str()));
        let mut pending = self.lock();
        for (id, at) in &batch {
            // A newer use arrived during the write: keep it for the next flush.
            if pending.get(id).is_some_and(|latest| latest <= at) {
                pending.remove(id);
            }
        }
        Ok(batch.len())
    }

    /// Flushes and logs instead of failing; for the background task and shutdown.
    pub async fn flush_logged(&self, pool: &DbPool, cache: &AuthCache) {
        match self.flush(pool, cache).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "flushed last_used_at"),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "could not flush last_used_at; will retry")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

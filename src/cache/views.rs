//! The view cache: keys as `GET .../admin_api_keys/{id}` shows them, by id.
//!
//! A view's `last_used_at` may lag other replicas' uses by up to the TTL on top of the usage
//! flush interval; this replica's own uses are overlaid fresh (see [`super::usage`]).

use std::sync::Arc;

use actix_web::web::Bytes;

use super::{Cache, FillTicket};
use crate::models::admin_api_key::KeyWithOwner;

/// A key as `retrieve` shows it, when it was read: the row and its rendered JSON.
#[derive(Debug)]
pub struct CachedView {
    pub key: KeyWithOwner,
    /// The response body with the stored `last_used_at`.
    pub body: Bytes,
    cached_at: i64,
}

impl Cache {
    /// The key `key_id` as last read, if cached and fresh at `now`; otherwise a ticket for
    /// [`Cache::fill_view`].
    pub fn view(&self, key_id: &str, now: i64) -> Result<Arc<CachedView>, FillTicket> {
        if self.trusted()
            && let Some(view) = self.views.get(key_id)
            && self.fresh(view.cached_at, now)
        {
            return Ok(view);
        }
        Err(self.ticket())
    }

    /// Caches a key read for `retrieve` (unless it was invalidated since the ticket was
    /// issued). Absent keys are not remembered.
    pub fn fill_view(
        &self,
        ticket: FillTicket,
        found: Option<(KeyWithOwner, Bytes)>,
        now: i64,
    ) -> Option<Arc<CachedView>> {
        let (key, body) = found?;
        let view = Arc::new(CachedView {
            key,
            body,
            cached_at: now,
        });
        self.admit(ticket, Some(&view.key.0.id), |_| {
            self.views.insert(view.key.0.id.clone(), Arc::clone(&view));
        });
        Some(view)
    }

    /// Drops the cached view of `key_id` if the database has since shown a later
    /// `last_used_at` (written by another replica's flush), so a retrieve never shows an older
    /// value than a list on this replica just did.
    pub fn note_stored_use(&self, key_id: &str, last_used_at: Option<i64>) {
        if let Some(view) = self.views.peek(key_id)
            && view.key.0.last_used_at < last_used_at
        {
            self.forget_views([key_id]);
        }
    }
}

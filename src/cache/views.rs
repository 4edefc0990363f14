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
        Some(self.fill_views(&ticket, [(key, body)], now).remove(0))
    }

    /// Caches several keys read with one ticket (a list page's misses).
    pub fn fill_views(
        &self,
        ticket: &FillTicket,
        found: impl IntoIterator<Item = (KeyWithOwner, Bytes)>,
        now: i64,
    ) -> Vec<Arc<CachedView>> {
        let views: Vec<_> = found
            .into_iter()
            .map(|(key, body)| {
                Arc::new(CachedView {
                    key,
                    body,
                    cached_at: now,
                })
            })
            .collect();
        for view in &views {
            self.admit(FillTicket(ticket.0), Some(&view.key.0.id), |_| {
                self.views.insert(view.key.0.id.clone(), Arc::clone(view));
            });
        }
        views
    }

    /// A ticket for fills of views read from now on (a list page's misses).
    pub fn view_ticket(&self) -> FillTicket {
        self.ticket()
    }

    /// The view of `key_id` if cached, fresh at `now` and showing `stored_last_used_at`, the
    /// value a list page just read; a view showing an older value is dropped.
    pub fn listed_view(
        &self,
        key_id: &str,
        stored_last_used_at: Option<i64>,
        now: i64,
    ) -> Option<Arc<CachedView>> {
        let view = self.view(key_id, now).ok()?;
        if view.key.0.last_used_at == stored_last_used_at {
            return Some(view);
        }
        self.note_stored_use(key_id, stored_last_used_at);
        None
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

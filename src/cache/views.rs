//! The view cache: keys as `GET .../admin_api_keys/{id}` shows them, by id.
//!
//! A view's `last_used_at` may lag other replicas' uses by up to the TTL on top of the usage
//! flush interval; this replica's own uses are overlaid fresh (see [`super::usage`]).

use std::sync::Arc;

use actix_web::web::Bytes;

use super::{Cache, FillTicket};
use crate::metrics::{self, CacheName};
use crate::models::admin_api_key::{KeyWithOwner, Listed};

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
            metrics::cache_hit(CacheName::Views);
            return Ok(view);
        }
        metrics::cache_miss(CacheName::Views);
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

    /// The view of the key a list page just read, if cached, fresh at `now` and agreeing
    /// with what the page read on every column a change can move. A view that disagrees is
    /// dropped, so a retrieve never shows an older key than a list on this replica just did.
    pub fn listed_view(&self, listed: &Listed, now: i64) -> Option<Arc<CachedView>> {
        let view = self.view(&listed.id, now).ok()?;
        if listed.matches(&view.key.0) {
            return Some(view);
        }
        self.forget_views([listed.id.as_str()]);
        None
    }
}

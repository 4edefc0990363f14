//! `GET /metrics`: every family of `crate::metrics` in Prometheus' text format, for a scraper.
//!
//! Policy: no key is needed, as for the probes. A scraper is configured with a URL, not a
//! credential, and what it reads names no key, owner or client: route templates, statuses,
//! outcomes and sizes. An operator who would rather not serve it to the API's clients moves
//! it to a listen address of its own (`METRICS_BIND_ADDR`, e.g. on a private interface); the
//! main address then answers it 404. It is not part of the OpenAPI document, which describes
//! the API's listener: it may not be served there.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::metrics::{CacheName, Snapshot};
use crate::state::AppState;

/// The content type of Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every family, with the gauges read from this server now.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = crate::metrics::render(&snapshot(&state)).ok_or_else(|| {
        ApiError::Unavailable("another metrics recorder was installed in this process".into())
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
        .body(text))
}

/// The gauges, read from the live pool, caches and usage tracker.
fn snapshot(state: &AppState) -> Snapshot {
    let pool = state.pool.state();
    let cache = &state.cache;
    Snapshot {
        pool_idle: pool.idle_connections,
        pool_in_use: pool.connections.saturating_sub(pool.idle_connections),
        pool_max: state.pool.max_size(),
        cache_entries: std::array::from_fn(|i| cache.entries(CacheName::ALL[i])),
        live_hashes: cache.key_set_size().0,
        usage_pending: state.usage.pending_len(),
        sync: Some(cache.sync_state()),
    }
}

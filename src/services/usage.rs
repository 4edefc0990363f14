//! Writing batched `last_used_at` values (the bookkeeping is `cache::usage`).

use std::time::Instant;

use crate::cache::Invalidation;
use crate::error::{ApiError, error_chain};
use crate::metrics;
use crate::models::admin_api_key;
use crate::services::{Change, write_statement};
use crate::state::AppState;

/// Writes all pending uses in one statement; on failure they stay pending for the next try.
/// The cached views of the written keys are dropped after the write and before the pending
/// uses, so that once a pending use is forgotten no response falls back to an older
/// `last_used_at`. Returns how many keys were written.
pub async fn flush(state: &AppState) -> Result<usize, ApiError> {
    let batch = state.usage.pending();
    if batch.is_empty() {
        return Ok(0);
    }
    let written = batch.clone();
    let started = Instant::now();
    let result = write_statement(state, move |conn| {
        admin_api_key::record_last_used(conn, &written)?;
        let ids = written.into_iter().map(|(id, _)| id).collect();
        Ok(Change::new(()).invalidate(Invalidation::Views(ids)))
    })
    .await;
    metrics::usage_flushed(started.elapsed(), result.is_ok().then_some(batch.len()));
    result?;
    state.usage.written(&batch);
    Ok(batch.len())
}

/// Flushes and logs instead of failing; for the background task and shutdown.
pub async fn flush_logged(state: &AppState) {
    match flush(state).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(keys = n, "flushed last_used_at"),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "could not flush last_used_at; will retry")
        }
    }
}

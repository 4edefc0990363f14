//! Writing batched `last_used_at` values (the bookkeeping is `cache::usage`).

use crate::cache::Invalidation;
use crate::error::{ApiError, error_chain};
use crate::models::{admin_api_key, project_api_key};
use crate::services::{Change, write};
use crate::state::AppState;

/// Writes all pending uses, one statement per table (admin keys, project keys: the batch is
/// by key id, and an id matches in one table only); on failure they stay pending for the next
/// try.
/// The cached views of the written keys are dropped after the write and before the pending
/// uses, so that once a pending use is forgotten no response falls back to an older
/// `last_used_at`. Returns how many keys were written.
pub async fn flush(state: &AppState) -> Result<usize, ApiError> {
    let batch = state.usage.pending();
    if batch.is_empty() {
        return Ok(0);
    }
    let written = batch.clone();
    write(state, move |conn| {
        admin_api_key::record_last_used(conn, &written)?;
        project_api_key::record_last_used(conn, &written)?;
        let ids = written.into_iter().map(|(id, _)| id).collect();
        Ok(Change::new(()).invalidate(Invalidation::Views(ids)))
    })
    .await?;
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

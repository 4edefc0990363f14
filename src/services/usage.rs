//! Writing batched `last_used_at` values (the bookkeeping is `cache::usage`).

use std::time::Instant;

use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::error::{ApiError, error_chain};
use crate::metrics;
use crate::models::{admin_api_key, project_api_key};
use crate::services::{Change, write, write_statement};
use crate::state::AppState;

/// Writes all pending uses, one statement per table that has some (admin keys, project keys);
/// on failure they stay pending for the next try. The cached views of the written keys are
/// dropped after the write and before the pending uses, so that once a pending use is
/// forgotten no response falls back to an older `last_used_at`. Returns how many keys were
/// written.
pub async fn flush(state: &AppState) -> Result<usize, ApiError> {
    let (admin, project) = state.usage.pending();
    if admin.is_empty() && project.is_empty() {
        return Ok(0);
    }
    let (admin_batch, project_batch) = (admin.clone(), project.clone());
    let change = move |conn: &mut DbConnection| {
        if !admin_batch.is_empty() {
            admin_api_key::record_last_used(conn, &admin_batch)?;
        }
        if !project_batch.is_empty() {
            project_api_key::record_last_used(conn, &project_batch)?;
        }
        let ids = admin_batch
            .into_iter()
            .chain(project_batch)
            .map(|(id, _)| id);
        Ok(Change::new(()).invalidate(Invalidation::Views(ids.collect())))
    };
    let started = Instant::now();
    let result = if admin.is_empty() || project.is_empty() {
        write_statement(state, change).await
    } else {
        write(state, change).await
    };
    let count = admin.len() + project.len();
    metrics::usage_flushed(started.elapsed(), result.is_ok().then_some(count));
    result?;
    state.usage.written(&admin);
    state.usage.written(&project);
    Ok(count)
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

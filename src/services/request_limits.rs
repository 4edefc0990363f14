//! Forward auth's per-model rate limits for project keys: the project's limits for the model
//! (remembered in `cache.model_limits`, read from the database once per pair and after each
//! change), a first-seen model recorded so every project lists a limit for it, and one request
//! taken from the budgets (see `model_limits` for how budgets behave, replicas included).

use std::sync::Arc;

use crate::db::run_blocking;
use crate::domain::rate_limits::{Limits, ModelName};
use crate::error::ApiError;
use crate::model_limits::{Decision, Quota, RequestLimits, retry_after_secs};
use crate::models::rate_limit;
use crate::services::{rate_limits, write};
use crate::state::AppState;

/// Takes one request of `project_id`'s budget for `model`: the quota to report, `None` when
/// no limit applies, or the 429.
pub async fn take_request(
    state: &AppState,
    project_id: &str,
    model: &ModelName,
) -> Result<Option<Quota>, ApiError> {
    let limits = limits_of(state, project_id, model).await?;
    let now = state.clock.monotonic();
    match state
        .cache
        .model_limits
        .check(project_id, model.as_str(), limits, now)
    {
        Decision::Unlimited => Ok(None),
        Decision::Allowed(quota) => Ok(Some(quota)),
        Decision::Limited {
            quota,
            per_day,
            retry_after,
        } => Err(ApiError::ModelRateLimited {
            quota,
            per_day,
            retry_after_secs: retry_after_secs(retry_after),
        }),
    }
}

/// The request limits of `project_id` for `model`, from memory when remembered.
async fn limits_of(
    state: &AppState,
    project_id: &str,
    model: &ModelName,
) -> Result<RequestLimits, ApiError> {
    let ticket = match state.cache.model_limits.limits(project_id, model.as_str()) {
        Ok(limits) => return Ok(limits),
        Err(ticket) => ticket,
    };
    let defaults = Arc::clone(&state.rate_limit_models);
    let (project, wanted) = (project_id.to_owned(), model.clone());
    let (limits, known) = run_blocking(&state.pool, move |conn| {
        let limits = rate_limit::effective(conn, &defaults, &project, &wanted)?;
        let known = defaults.lists(&wanted) || rate_limit::seen(conn, &wanted)?;
        Ok((limits, known))
    })
    .await?;
    if !known {
        let (defaults, seen) = (Arc::clone(&state.rate_limit_models), model.clone());
        let now = state.clock.now();
        write(state, move |conn| {
            rate_limits::note_model(conn, &defaults, &seen, now)
        })
        .await?;
    }
    let limits = request_limits(&limits);
    state
        .cache
        .model_limits
        .remember(project_id, model.as_str(), limits, ticket);
    Ok(limits)
}

/// The two request limits forward auth enforces, out of a model's six.
fn request_limits(limits: &Limits) -> RequestLimits {
    let count = |limit: Option<i64>| limit.map(|n| u64::try_from(n).unwrap_or(0));
    RequestLimits {
        per_minute: count(limits.max_requests_per_1_minute),
        per_day: count(limits.max_requests_per_1_day),
    }
}

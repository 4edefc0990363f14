//! Per-project, per-model rate limits: listing them, changing them (`rate_limit.updated`), and
//! recording models first seen at forward auth.
//!
//! A project has a rate limit for every known model: those `RATE_LIMIT_MODELS` lists and those
//! seen at forward auth ([`note_model`]). Its value is the operator's override where one is set
//! and the model's default otherwise (`models::rate_limit::effective`). Changing one returns
//! `Invalidation::Project`, so a cached verdict holding the project's limits is refilled.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::{self, AuditEvent};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::Scope;
use crate::domain::rate_limits::{Limits, ModelName, RateLimitModels};
use crate::error::ApiError;
use crate::models::admin_api_key::RowLock;
use crate::models::rate_limit::{self, RateLimitRow};
use crate::services::Change;
use crate::services::caller::{Principal, Target, authorize};
use crate::services::projects::active_project;

/// The most models first sight records: beyond it a new model name at forward auth is not
/// recorded (it still has the `*` defaults), so key holders cannot grow the table without
/// bound by naming made-up models.
pub const MAX_SEEN_MODELS: i64 = 1000;

/// One of a project's rate limits: the model and its effective limits.
pub type RateLimit = (ModelName, Limits);

/// The 404 for a rate limit id that names no known model.
pub fn no_such_rate_limit(rate_limit_id: &str) -> ApiError {
    let message = match ModelName::from_rate_limit_id(rate_limit_id) {
        Some(model) => format!(
            "No rate limit has the id `{}`: the model is neither configured nor seen yet.",
            model.rate_limit_id()
        ),
        None => "No rate limit has this id (rate limit ids are `rl-` and a model name).".to_owned(),
    };
    ApiError::NotFound {
        message,
        param: Some("rate_limit_id"),
    }
}

/// Every rate limit of `project_id` (which must exist), in model name order.
pub fn list(
    conn: &mut DbConnection,
    defaults: &RateLimitModels,
    project_id: &str,
) -> Result<Vec<RateLimit>, ApiError> {
    crate::services::projects::existing(conn, project_id)?;
    let mut models: BTreeSet<ModelName> = defaults.configured().cloned().collect();
    for seen in rate_limit::seen_models(conn)? {
        // A name stored by hand that this version would refuse is left out.
        if let Ok(model) = ModelName::parse("model", &seen) {
            models.insert(model);
        }
    }
    let overrides: BTreeMap<String, Limits> = rate_limit::overrides_of(conn, project_id)?
        .into_iter()
        .map(|row| (row.model.clone(), row.limits()))
        .collect();
    Ok(models
        .into_iter()
        .map(|model| {
            let set = overrides.get(model.as_str()).copied().unwrap_or_default();
            let limits = set.over(defaults.defaults_for(&model));
            (model, limits)
        })
        .collect())
}

/// Sets the limits in `changes` (the others keep their value) for the model of
/// `rate_limit_id` in the active project `project_id` (`rate_limit.updated`); returns the
/// rate limit after the change.
pub fn update<'a>(
    conn: &mut DbConnection,
    who: impl Into<Principal<'a>>,
    defaults: &RateLimitModels,
    project_id: &str,
    rate_limit_id: &str,
    changes: Limits,
    now: i64,
) -> Result<Change<RateLimit>, ApiError> {
    let caller = authorize(conn, who, Scope::ProjectsWrite, Target::Nothing, now)?;
    active_project(conn, project_id, RowLock::Share)?;
    let model = ModelName::from_rate_limit_id(rate_limit_id)
        .ok_or_else(|| no_such_rate_limit(rate_limit_id))?;
    if !defaults.lists(&model) && !rate_limit::seen(conn, &model)? {
        return Err(no_such_rate_limit(rate_limit_id));
    }
    let before = rate_limit::find_override(conn, project_id, &model)?
        .map(|row| row.limits())
        .unwrap_or_default();
    let row = RateLimitRow::new(project_id, &model, changes.over(before), now);
    rate_limit::save_override(conn, &row)?;
    let event = AuditEvent::RateLimitUpdated {
        project_id: project_id.to_owned(),
        rate_limit_id: model.rate_limit_id(),
        changes,
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    let limits = row.limits().over(defaults.defaults_for(&model));
    Ok(Change::new((model, limits)).invalidate(Invalidation::Project(project_id.to_owned())))
}

/// Records `model`, named at forward auth, as seen at `now`, so every project lists a rate
/// limit for it from then on (with the defaults until an operator changes it). Returns whether
/// it was new. A configured model, or one beyond [`MAX_SEEN_MODELS`], is not recorded.
/// Run it with `services::write`; it implies no invalidation (nothing caches the list of
/// models).
pub fn note_model(
    conn: &mut DbConnection,
    defaults: &RateLimitModels,
    model: &ModelName,
    now: i64,
) -> Result<Change<bool>, ApiError> {
    if defaults.lists(model) || rate_limit::seen(conn, model)? {
        return Ok(Change::new(false));
    }
    if rate_limit::seen_count(conn)? >= MAX_SEEN_MODELS {
        return Ok(Change::new(false));
    }
    Ok(Change::new(rate_limit::note_model(conn, model, now)?))
}

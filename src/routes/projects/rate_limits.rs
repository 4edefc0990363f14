//! `/organization/projects/{project_id}/rate_limits`: a project's limits per model, as
//! OpenAI's `project.rate_limit` (ids `rl-<model>`). The rules live in
//! `services::rate_limits`; the models and their defaults come from `RATE_LIMIT_MODELS` and
//! from first sight at forward auth.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::Scope;
use crate::domain::rate_limits::{LIMIT_NAMES, Limits};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams, RequestBody};
use crate::routes::list::{List, MAX_LIMIT};
use crate::routes::method_not_allowed;
use crate::services::{self, rate_limits};
use crate::state::AppState;

/// The default page size of this list (upstream's).
const DEFAULT_LIMIT: usize = 100;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects/{project_id}/rate_limits")
            .route(web::get().to(list))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        // Model names may hold `/` (`org/name`): the id takes the rest of the path.
        web::resource("/projects/{project_id}/rate_limits/{rate_limit_id:.+}")
            .route(web::post().to(update))
            .default_service(method_not_allowed("POST")),
    );
}

/// Always `project.rate_limit`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum RateLimitObject {
    #[serde(rename = "project.rate_limit")]
    RateLimit,
}

/// A project's limits for one model: the operator's where set, the model's defaults
/// otherwise. Limits other than requests and tokens per minute are present only where the
/// model's defaults or an override give them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectRateLimit)]
pub struct RateLimitJson {
    pub object: RateLimitObject,
    /// `rl-` and the model's name.
    #[schema(example = "rl-gpt-4o")]
    pub id: String,
    /// The model the limits apply to.
    #[schema(example = "gpt-4o")]
    pub model: String,
    /// Requests per minute (enforced at forward auth).
    #[schema(value_type = i64, required = true, example = 500)]
    pub max_requests_per_1_minute: Option<i64>,
    /// Tokens per minute (kept for the services behind the proxy; not counted here).
    #[schema(value_type = i64, required = true, example = 30000)]
    pub max_tokens_per_1_minute: Option<i64>,
    /// Images per minute (kept, not counted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_images_per_1_minute: Option<i64>,
    /// Audio megabytes per minute (kept, not counted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_audio_megabytes_per_1_minute: Option<i64>,
    /// Requests per day (enforced at forward auth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_1_day: Option<i64>,
    /// Batch input tokens per day (kept, not counted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_1_day_max_input_tokens: Option<i64>,
}

impl From<rate_limits::RateLimit> for RateLimitJson {
    fn from((model, limits): rate_limits::RateLimit) -> Self {
        Self {
            object: RateLimitObject::RateLimit,
            id: model.rate_limit_id(),
            model: model.as_str().to_owned(),
            max_requests_per_1_minute: limits.max_requests_per_1_minute,
            max_tokens_per_1_minute: limits.max_tokens_per_1_minute,
            max_images_per_1_minute: limits.max_images_per_1_minute,
            max_audio_megabytes_per_1_minute: limits.max_audio_megabytes_per_1_minute,
            max_requests_per_1_day: limits.max_requests_per_1_day,
            batch_1_day_max_input_tokens: limits.batch_1_day_max_input_tokens,
        }
    }
}

/// Body of a change: the limits to set, each a non-negative integer; absent or `null` ones
/// keep their value. At least one must be set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectRateLimitUpdateRequest {
    /// Requests per minute.
    #[schema(nullable = true, minimum = 0)]
    pub max_requests_per_1_minute: Option<i64>,
    /// Tokens per minute.
    #[schema(nullable = true, minimum = 0)]
    pub max_tokens_per_1_minute: Option<i64>,
    /// Images per minute.
    #[schema(nullable = true, minimum = 0)]
    pub max_images_per_1_minute: Option<i64>,
    /// Audio megabytes per minute.
    #[schema(nullable = true, minimum = 0)]
    pub max_audio_megabytes_per_1_minute: Option<i64>,
    /// Requests per day.
    #[schema(nullable = true, minimum = 0)]
    pub max_requests_per_1_day: Option<i64>,
    /// Batch input tokens per day.
    #[schema(nullable = true, minimum = 0)]
    pub batch_1_day_max_input_tokens: Option<i64>,
}

impl RequestBody for ProjectRateLimitUpdateRequest {
    const FIELDS: &'static [&'static str] = &[
        "max_requests_per_1_minute",
        "max_tokens_per_1_minute",
        "max_images_per_1_minute",
        "max_audio_megabytes_per_1_minute",
        "max_requests_per_1_day",
        "batch_1_day_max_input_tokens",
    ];

    fn expects(_: &str) -> String {
        "a non-negative integer, or null".to_owned()
    }
}

/// Query parameters of the list (documentation only).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RateLimitListQuery {
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, default = 100)]
    limit: Option<String>,
    /// A rate limit id: the page starts right after it (the next page).
    after: Option<String>,
    /// A rate limit id: the page ends right before it (the previous page).
    before: Option<String>,
}

/// List project rate limits
///
/// Returns a project's limit for every known model (configured in `RATE_LIMIT_MODELS` or seen
/// at forward auth), in model name order: the operator's override where one is set, the
/// model's defaults otherwise.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/rate_limits",
    operation_id = "list-project-rate-limits",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project."), RateLimitListQuery),
    responses(
        (status = 200, description = "One page of the project's rate limits.", body = List<RateLimitJson>),
        (status = 400, description = "`limit`, `after` or `before` is invalid; `param` names it.", body = ErrorResponse),
        (status = 404, description = "No project has this id.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    project_id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsRead)?;
    let (limit, after, before) = parse_list_query(req.query_string())?;
    let defaults = state.rate_limit_models.clone();
    let project_id = project_id.into_inner();
    let all = run_blocking(&state.pool, move |conn| {
        rate_limits::list(conn, &defaults, &project_id)
    })
    .await?;
    let ids: Vec<String> = all.iter().map(|(model, _)| model.rate_limit_id()).collect();
    let (start, end, has_more) = page_bounds(&ids, limit, after, before)?;
    let data: Vec<RateLimitJson> = all
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(RateLimitJson::from)
        .collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |r: &RateLimitJson| &r.id)))
}

/// The page of `ids` (all of a project's rate limits, in order) that `limit`, `after` and
/// `before` ask for: its start, its end, and whether more lie beyond it in the direction of
/// paging.
fn page_bounds(
    ids: &[String],
    limit: usize,
    after: Option<String>,
    before: Option<String>,
) -> Result<(usize, usize, bool), ApiError> {
    let position = |param: &str, id: &str| {
        ids.iter().position(|known| known == id).ok_or_else(|| {
            ApiError::invalid_param(
                param,
                format!("`{param}` must be the id of one of this project's rate limits."),
            )
        })
    };
    Ok(match (after, before) {
        (Some(id), _) => {
            let start = position("after", &id)? + 1;
            let end = (start + limit).min(ids.len());
            (start, end, end < ids.len())
        }
        (None, Some(id)) => {
            let end = position("before", &id)?;
            let start = end.saturating_sub(limit);
            (start, end, start > 0)
        }
        (None, None) => {
            let end = limit.min(ids.len());
            (0, end, end < ids.len())
        }
    })
}

type ListQuery = (usize, Option<String>, Option<String>);

fn parse_list_query(query: &str) -> Result<ListQuery, ApiError> {
    let mut query = QueryParams::parse(query)?;
    let limit = match query.take_integer("limit")? {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "limit",
                format!("`limit` must be an integer from 1 to {MAX_LIMIT}."),
            ));
        }
    };
    let after = query.take("after")?;
    let before = query.take("before")?;
    query.finish()?;
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid_param(
            "before",
            "Give `after` or `before`, not both.",
        ));
    }
    Ok((limit, after, before))
}

/// Modify project rate limit
///
/// Sets some of an active project's limits for one model; the others keep their value. The
/// per-minute and per-day request limits apply at forward auth from the next request on.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/rate_limits/{rate_limit_id}",
    operation_id = "update-project-rate-limits",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("rate_limit_id" = String, Path, description = "Id of the rate limit: `rl-` and the model's name (a `/` in it may be sent as `%2F`)."),
    ),
    request_body = ProjectRateLimitUpdateRequest,
    responses(
        (status = 200, description = "The rate limit after the change.", body = RateLimitJson),
        (status = 404, description = "No project has this id, or no known model has this rate limit id.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn update(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let changes = parse_changes(body.parse().await?)?;
    let (project_id, rate_limit_id) = path.into_inner();
    let rate_limit_id = rate_limit_id.replace("%2F", "/").replace("%2f", "/");
    let (defaults, now) = (state.rate_limit_models.clone(), state.clock.now());
    let changed = services::write(&state, move |conn| {
        rate_limits::update(
            conn,
            &caller,
            &defaults,
            &project_id,
            &rate_limit_id,
            changes,
            now,
        )
    })
    .await?;
    tracing::info!(model = %changed.0.as_str(), "project rate limit updated");
    Ok(HttpResponse::Ok().json(RateLimitJson::from(changed)))
}

/// The limits a body sets: each non-negative, at least one.
fn parse_changes(body: ProjectRateLimitUpdateRequest) -> Result<Limits, ApiError> {
    let values = [
        body.max_requests_per_1_minute,
        body.max_tokens_per_1_minute,
        body.max_images_per_1_minute,
        body.max_audio_megabytes_per_1_minute,
        body.max_requests_per_1_day,
        body.batch_1_day_max_input_tokens,
    ];
    for ((name, _), value) in LIMIT_NAMES.iter().zip(values) {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::invalid_param(
                name,
                format!("`{name}` must be a non-negative integer."),
            ));
        }
    }
    let changes = Limits {
        max_requests_per_1_minute: body.max_requests_per_1_minute,
        max_tokens_per_1_minute: body.max_tokens_per_1_minute,
        max_images_per_1_minute: body.max_images_per_1_minute,
        max_audio_megabytes_per_1_minute: body.max_audio_megabytes_per_1_minute,
        max_requests_per_1_day: body.max_requests_per_1_day,
        batch_1_day_max_input_tokens: body.batch_1_day_max_input_tokens,
    };
    if changes.is_empty() {
        return Err(ApiError::invalid_request(
            "Send at least one limit to set, such as `max_requests_per_1_minute`.",
        ));
    }
    Ok(changes)
}

//! `/organization/projects`: OpenAI's projects, their members (`users`) and their per-model
//! rate limits. The rules live in `services::projects` (and its siblings); reads go straight
//! to the models.

pub mod json;
pub mod users;

use actix_web::{HttpRequest, HttpResponse, web};

use self::json::{
    ProjectCreateRequest, ProjectJson, ProjectListQuery, ProjectUpdateRequest, Residency,
};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::{KeyName, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::project;
use crate::routes::list::{List, Pagination};
use crate::routes::method_not_allowed;
use crate::services::{self, projects};
use crate::state::AppState;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}")
            .route(web::get().to(retrieve))
            .route(web::post().to(modify))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/archive")
            .route(web::post().to(archive))
            .default_service(method_not_allowed("POST")),
    )
    .configure(users::routes);
}

/// List projects
///
/// Returns one page of the organisation's projects, oldest first (ties by id, so paging never
/// skips or repeats one). Archived projects are left out unless `include_archived=true`.
#[utoipa::path(
    get,
    path = "/organization/projects",
    operation_id = "list-projects",
    tag = "Projects",
    params(ProjectListQuery),
    responses(
        (status = 200, description = "One page of projects.", body = List<ProjectJson>),
        (status = 400, description = "`limit`, `after` or `include_archived` is invalid; `param` names it.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsRead)?;
    let (page, include_archived) = parse_list_query(req.query_string())?;
    let (found, has_more) = run_blocking(&state.pool, move |conn| {
        let cursor = match &page.after {
            None => None,
            Some(id) => Some(project::cursor_of(conn, id)?.ok_or_else(|| no_page_after(id))?),
        };
        let mut found =
            project::list_page(conn, cursor.as_ref(), page.limit + 1, include_archived)?;
        let has_more = found.len() as i64 > page.limit;
        found.truncate(page.limit as usize);
        Ok((found, has_more))
    })
    .await?;
    let data = found.into_iter().map(ProjectJson::from).collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |p: &ProjectJson| &p.id)))
}

fn parse_list_query(query: &str) -> Result<(Pagination, bool), ApiError> {
    let mut query = QueryParams::parse(query)?;
    let page = Pagination::take(&mut query, Order::Asc, false)?;
    if let Some(id) = &page.after
        && !ids::plausible(id)
    {
        return Err(no_page_after(id));
    }
    let include_archived = match query.take("include_archived")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "include_archived",
                "`include_archived` must be `true` or `false`.",
            ));
        }
    };
    query.finish()?;
    Ok((page, include_archived))
}

/// The 400 for an `after` that names no project (the cursor is a position in the listing).
pub(crate) fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => {
                format!("No object with id `{id}` exists here, so there is no page after it.")
            }
            None => "`after` must be the `last_id` of a previous page.".to_owned(),
        },
    )
}

/// Create a project
///
/// Makes a new, active project. Projects are never deleted: archive one that is no longer
/// needed. `residency` and `external_key_id` are kept with the project and shown back.
#[utoipa::path(
    post,
    path = "/organization/projects",
    operation_id = "create-project",
    tag = "Projects",
    request_body = ProjectCreateRequest,
    responses(
        (status = 200, description = "The new project.", body = ProjectJson),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: ProjectCreateRequest = body.parse().await?;
    let new = projects::NewProject {
        name: KeyName::required("name", body.name.as_deref())?,
        external_key_id: body
            .external_key_id
            .map(|id| KeyName::parse("external_key_id", &id))
            .transpose()?,
        residency: body.residency.map(Residency::as_str),
    };
    let now = state.clock.now();
    let made = services::write(&state, move |conn| {
        projects::create(conn, &caller, new, now)
    })
    .await?;
    tracing::info!(project_id = %made.id, "project created");
    Ok(HttpResponse::Ok().json(ProjectJson::from(made)))
}

/// Retrieve a project
///
/// Returns one project, active or archived.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}",
    operation_id = "retrieve-project",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    responses(
        (status = 200, description = "The project.", body = ProjectJson),
        (status = 404, description = "No project has this id.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    project_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsRead)?;
    let project_id = project_id.into_inner();
    let found = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ProjectJson::from(found)))
}

/// Modify a project
///
/// Renames an active project or changes its `external_key_id`. An archived project cannot be
/// changed (400 `project_archived`).
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}",
    operation_id = "modify-project",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    request_body = ProjectUpdateRequest,
    responses(
        (status = 200, description = "The project after the change.", body = ProjectJson),
        (status = 404, description = "No project has this id.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn modify(
    caller: AdminKey,
    state: web::Data<AppState>,
    project_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: ProjectUpdateRequest = body.parse().await?;
    let update = projects::ProjectUpdate {
        name: body
            .name
            .map(|name| KeyName::parse("name", &name))
            .transpose()?,
        external_key_id: body
            .external_key_id
            .map(|id| {
                id.map(|id| KeyName::parse("external_key_id", &id))
                    .transpose()
            })
            .transpose()?,
    };
    if update.name.is_none() && update.external_key_id.is_none() {
        return Err(ApiError::invalid_request(
            "Send at least one of `name` and `external_key_id`.",
        ));
    }
    let (project_id, now) = (project_id.into_inner(), state.clock.now());
    let changed = services::write(&state, move |conn| {
        projects::update(conn, &caller, &project_id, update, now)
    })
    .await?;
    tracing::info!(project_id = %changed.id, "project updated");
    Ok(HttpResponse::Ok().json(ProjectJson::from(changed)))
}

/// Archive a project
///
/// Archives a project for good: its keys are refused from the next request on (on every
/// replica), and it can still be read but no longer changed, nor can its members, rate limits,
/// service accounts or keys. Archiving an archived project changes nothing and returns it.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/archive",
    operation_id = "archive-project",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    responses(
        (status = 200, description = "The archived project.", body = ProjectJson),
        (status = 404, description = "No project has this id.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn archive(
    caller: AdminKey,
    state: web::Data<AppState>,
    project_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let (project_id, now) = (project_id.into_inner(), state.clock.now());
    let archived = services::write(&state, move |conn| {
        projects::archive(conn, &caller, &project_id, now)
    })
    .await?;
    tracing::info!(project_id = %archived.id, "project archived");
    Ok(HttpResponse::Ok().json(ProjectJson::from(archived)))
}

//! `/organization/projects/{project_id}/api_keys`: the keys of a project, whoever owns them.
//! The rules live in `services::project_keys`; reads go straight to the model.

pub mod json;

use actix_web::{HttpRequest, HttpResponse, web};

use self::json::{
    CreateProjectApiKeyRequest, OwnerProjectAccess, ProjectApiKeyCreated, ProjectApiKeyDeleted,
    ProjectApiKeyDeletedObject, ProjectApiKeyJson,
};
use crate::auth::AdminKey;
use crate::db::{DbConnection, run_blocking};
use crate::domain::{Expiry, KeyName, Permissions, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::project_api_key::{self, KeyWithOwner};
use crate::routes::list::{List, MAX_LIMIT, Pagination};
use crate::routes::method_not_allowed;
use crate::services::project_keys::{self, NewProjectKey};
use crate::services::service_accounts::FIRST_KEY_NAME;
use crate::services::{self, projects};
use crate::state::AppState;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects/{project_id}/api_keys")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/api_keys/{api_key_id}")
            .route(web::get().to(retrieve))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, DELETE")),
    );
}

/// List a project's API keys
///
/// One page of the project's keys, members' and service accounts' alike, oldest first (ties by
/// id), each with its owner and whether that owner may use the project now. The
/// `owner_project_access` filter keeps only keys whose owner has (`active`) or has lost
/// (`inactive`) access; `any`, or leaving it out, lists every key. Works on archived projects
/// too. Needs `projects.read`.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/api_keys",
    operation_id = "list-project-api-keys",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 100 (default 20)."),
        ("after" = Option<String>, Query, description = "A key id: the page starts right after it (the previous page's `last_id`)."),
        ("owner_project_access" = Option<String>, Query, description = "`active`, `inactive` or `any` (the default)."),
    ),
    responses(
        (status = 200, description = "One page of keys.", body = List<ProjectApiKeyJson>),
        (status = 400, description = "`limit`, `after` or `owner_project_access` is invalid; `param` names it.", body = ErrorResponse),
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
    let mut query = QueryParams::parse(req.query_string())?;
    let page = Pagination::take(&mut query, Order::Asc, false)?;
    let access = match query.take("owner_project_access")?.as_deref() {
        None | Some("any") => None,
        Some("active") => Some(OwnerProjectAccess::Active),
        Some("inactive") => Some(OwnerProjectAccess::Inactive),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "owner_project_access",
                "`owner_project_access` must be `active`, `inactive` or `any`.",
            ));
        }
    };
    query.finish()?;
    let project_id = project_id.into_inner();
    let (found, has_more) = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        let mut found = matching_page(conn, &project_id, page.after, page.limit + 1, access)?;
        let has_more = found.len() as i64 > page.limit;
        found.truncate(page.limit as usize);
        Ok((found, has_more))
    })
    .await?;
    let data = found
        .into_iter()
        .map(|key| ProjectApiKeyJson::new(key, &state.usage, state.cache.mcp_presets()))
        .collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |k: &ProjectApiKeyJson| &k.id)))
}

/// Up to `limit` keys after `after` whose owner's access is `access` (any with `None`): pages
/// of the project's keys are read until enough match or none are left.
fn matching_page(
    conn: &mut DbConnection,
    project_id: &str,
    mut after: Option<String>,
    limit: i64,
    access: Option<OwnerProjectAccess>,
) -> Result<Vec<KeyWithOwner>, ApiError> {
    let mut found = Vec::new();
    loop {
        let read = if access.is_none() { limit } else { MAX_LIMIT };
        let page = project_api_key::list_page(conn, project_id, after.as_deref(), read)?
            .ok_or_else(|| no_page_after(after.as_deref().unwrap_or_default()))?;
        let exhausted = (page.len() as i64) < read;
        after = page.last().map(|key| key.key.id.clone());
        found.extend(page.into_iter().filter(|key| match access {
            None => true,
            Some(OwnerProjectAccess::Active) => key.owner_has_access,
            Some(OwnerProjectAccess::Inactive) => !key.owner_has_access,
        }));
        if exhausted || found.len() as i64 >= limit {
            found.truncate(limit as usize);
            return Ok(found);
        }
    }
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => format!(
                "No key with id `{id}` exists in this project, so there is no page after it."
            ),
            None => "`after` must be the id of a key of this project.".to_owned(),
        },
    )
}

/// Create a member's project API key (extension)
///
/// Our addition to the upstream API, which makes members' keys only in its dashboard: makes a
/// key (`sk-proj-…`) owned by `user_id`, an enabled member of the project. The response is the
/// key object with its secret in `value`, shown this once. `scopes` are free-form strings for
/// the services behind the proxy, each covered by the caller's own effective permissions (no
/// escalation). The key works while its owner stays an enabled member and the project is not
/// archived, until `expires_in_seconds` or `expires_at` (one of them; the organisation's
/// default lifetime when neither). Needs `projects.write`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/api_keys",
    operation_id = "create-project-api-key",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    request_body = CreateProjectApiKeyRequest,
    responses(
        (status = 200, description = "The new key, with its secret in `value`.", body = ProjectApiKeyCreated),
        (status = 400, description = "The body is invalid, the user is not a member of the project (`not_a_project_member`), or the project is archived (`project_archived`).", body = ErrorResponse),
        (status = 404, description = "No project, or no user, has this id.", body = ErrorResponse),
        (status = 409, description = "The user is disabled (`user_disabled`).", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    project_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: CreateProjectApiKeyRequest = body.parse().await?;
    let user_id = body
        .user_id
        .ok_or_else(|| ApiError::invalid_param("user_id", "`user_id` is required."))?;
    let (project_id, now) = (project_id.into_inner(), state.clock.now());
    let asked = Expiry::parse(body.expires_in_seconds, body.expires_at)?;
    let new = NewProjectKey {
        name: KeyName::parse("name", body.name.as_deref().unwrap_or(FIRST_KEY_NAME))?,
        scopes: Permissions::parse("scopes", &body.scopes.unwrap_or_default())?,
        expires_at: state.key_lifetime.expires_at(asked, now)?,
        mcp: crate::routes::mcp::requested(body.mcp, state.cache.mcp_presets())?,
    };
    let issued = services::write(&state, move |conn| {
        project_keys::create_for_member(conn, &caller, &project_id, &user_id, new, now)
    })
    .await?;
    tracing::info!(key_id = %issued.key.key.id, "project key created");
    Ok(HttpResponse::Ok().json(ProjectApiKeyCreated {
        value: issued.secret.expose().to_owned(),
        key: ProjectApiKeyJson::new(issued.key, &state.usage, state.cache.mcp_presets()),
    }))
}

/// Retrieve a project API key
///
/// The key with its owner and whether that owner may use the project now. Needs
/// `projects.read`; works on archived projects too.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/api_keys/{api_key_id}",
    operation_id = "retrieve-project-api-key",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("api_key_id" = String, Path, description = "Id of the key."),
    ),
    responses(
        (status = 200, description = "The key.", body = ProjectApiKeyJson),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        (status = 404, description = "No project, or no key of the project, has this id.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsRead)?;
    let (project_id, key_id) = path.into_inner();
    let found = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        if !ids::plausible(&key_id) {
            return Err(project_keys::no_such_project_key(&key_id));
        }
        project_api_key::find(conn, &project_id, &key_id)?
            .ok_or_else(|| project_keys::no_such_project_key(&key_id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(ProjectApiKeyJson::new(
        found,
        &state.usage,
        state.cache.mcp_presets(),
    )))
}

/// Delete a project API key
///
/// Deletes a member's key: it stops working at once, on every replica. A service account's key
/// is refused (400 `service_account_key`), as upstream: it goes with its service account.
/// Refused on an archived project. Needs `projects.write`.
#[utoipa::path(
    delete,
    path = "/organization/projects/{project_id}/api_keys/{api_key_id}",
    operation_id = "delete-project-api-key",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("api_key_id" = String, Path, description = "Id of the key."),
    ),
    responses(
        (status = 200, description = "The key was deleted.", body = ProjectApiKeyDeleted),
        (status = 400, description = "The key belongs to a service account (`service_account_key`), the project is archived (`project_archived`), or the request has a query parameter.", body = ErrorResponse),
        (status = 404, description = "No project, or no key of the project, has this id.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let ((project_id, key_id), now) = (path.into_inner(), state.clock.now());
    let id = key_id.clone();
    services::write(&state, move |conn| {
        project_keys::delete(conn, &caller, &project_id, &id, now)
    })
    .await?;
    tracing::info!(key_id = %key_id, "project key deleted");
    Ok(HttpResponse::Ok().json(ProjectApiKeyDeleted {
        object: ProjectApiKeyDeletedObject::Deleted,
        id: key_id,
        deleted: true,
    }))
}

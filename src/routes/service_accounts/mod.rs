//! `/organization/projects/{project_id}/service_accounts`: a project's service accounts and
//! the keys made for them. The rules live in `services::service_accounts`; reads go straight
//! to the models.

pub mod json;

use actix_web::{HttpRequest, HttpResponse, web};

use self::json::{
    CreateServiceAccountKeyRequest, CreateServiceAccountRequest, ServiceAccountApiKeyJson,
    ServiceAccountApiKeyObject, ServiceAccountCreated, ServiceAccountDeleted,
    ServiceAccountDeletedObject, ServiceAccountJson, ServiceAccountObject,
    UpdateServiceAccountRequest,
};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::{Expiry, KeyName, McpPresets, Permissions, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::service_account;
use crate::routes::list::{List, Pagination};
use crate::routes::mcp::McpPolicyJson;
use crate::routes::method_not_allowed;
use crate::services::project_keys::{IssuedProjectKey, NewProjectKey};
use crate::services::service_accounts::{self, FIRST_KEY_NAME, ServiceAccountUpdate};
use crate::services::{self, projects};
use crate::state::AppState;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects/{project_id}/service_accounts")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/service_accounts/{service_account_id}")
            .route(web::get().to(retrieve))
            .route(web::post().to(update))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, POST, DELETE")),
    )
    .service(
        web::resource("/projects/{project_id}/service_accounts/{service_account_id}/api_keys")
            .route(web::post().to(create_key))
            .default_service(method_not_allowed("POST")),
    );
}

/// List a project's service accounts
///
/// One page of the project's service accounts, oldest first (ties by id). Works on archived
/// projects too. Needs `projects.read`.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/service_accounts",
    operation_id = "list-project-service-accounts",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 100 (default 20)."),
        ("after" = Option<String>, Query, description = "A service account id: the page starts right after it (the previous page's `last_id`)."),
    ),
    responses(
        (status = 200, description = "One page of service accounts.", body = List<ServiceAccountJson>),
        (status = 400, description = "`limit` or `after` is invalid; `param` names it.", body = ErrorResponse),
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
    query.finish()?;
    let project_id = project_id.into_inner();
    let (found, has_more) = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        let after = page.after.as_deref();
        let mut found = service_account::list_page(conn, &project_id, after, page.limit + 1)?
            .ok_or_else(|| no_page_after(after.unwrap_or_default()))?;
        let has_more = found.len() as i64 > page.limit;
        found.truncate(page.limit as usize);
        Ok((found, has_more))
    })
    .await?;
    let data = found.into_iter().map(ServiceAccountJson::from).collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |a: &ServiceAccountJson| &a.id)))
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => format!(
                "No service account with id `{id}` exists in this project, so there is no page \
                 after it."
            ),
            None => "`after` must be the id of a service account of this project.".to_owned(),
        },
    )
}

/// Create a service account
///
/// Makes a service account in the project with role `member` and its first key, whose secret
/// (`sk-svcacct-…`) is in this response and never again. The key holds no scopes; make keys
/// with scopes through the service account's `api_keys`. With `create_service_account_only`,
/// the account gets role `none` and no key. Refused on an archived project. Needs
/// `projects.write`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/service_accounts",
    operation_id = "create-project-service-account",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    request_body = CreateServiceAccountRequest,
    responses(
        (status = 200, description = "The service account, with its first key.", body = ServiceAccountCreated),
        (status = 400, description = "The body is invalid, or the project is archived (`project_archived`).", body = ErrorResponse),
        (status = 404, description = "No project has this id.", body = ErrorResponse),
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
    let body: CreateServiceAccountRequest = body.parse().await?;
    let name = body
        .name
        .ok_or_else(|| ApiError::invalid_param("name", "`name` is required."))?;
    let name = KeyName::parse("name", &name)?;
    let (project_id, now) = (project_id.into_inner(), state.clock.now());
    let expires_at = state.key_lifetime.expires_at(Expiry::Default, now)?;
    let first_key = (!body.create_service_account_only.unwrap_or(false)).then_some(expires_at);
    let created = services::write(&state, move |conn| {
        service_accounts::create(conn, &caller, &project_id, name, first_key, now)
    })
    .await?;
    tracing::info!(service_account_id = %created.account.id, "service account created");
    let account = ServiceAccountJson::from(created.account);
    Ok(HttpResponse::Ok().json(ServiceAccountCreated {
        object: ServiceAccountObject::ServiceAccount,
        id: account.id,
        name: account.name,
        role: account.role,
        created_at: account.created_at,
        api_key: created
            .key
            .map(|key| key_json(key, state.cache.mcp_presets())),
    }))
}

fn key_json(issued: IssuedProjectKey, presets: &McpPresets) -> ServiceAccountApiKeyJson {
    ServiceAccountApiKeyJson {
        mcp: McpPolicyJson::shown(&issued.key.key.mcp, presets),
        object: ServiceAccountApiKeyObject::ApiKey,
        value: issued.secret.expose().to_owned(),
        name: issued.key.key.name,
        created_at: issued.key.key.created_at,
        expires_at: issued.key.key.expires_at,
        id: issued.key.key.id,
    }
}

/// Retrieve a service account
///
/// Needs `projects.read`; works on archived projects too.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/service_accounts/{service_account_id}",
    operation_id = "retrieve-project-service-account",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("service_account_id" = String, Path, description = "Id of the service account."),
    ),
    responses(
        (status = 200, description = "The service account.", body = ServiceAccountJson),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        (status = 404, description = "No project, or no service account of the project, has this id.", body = ErrorResponse),
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
    let (project_id, account_id) = path.into_inner();
    let found = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        if !ids::plausible(&account_id) {
            return Err(service_accounts::no_such_service_account(&account_id));
        }
        service_account::find(conn, &project_id, &account_id)?
            .ok_or_else(|| service_accounts::no_such_service_account(&account_id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(ServiceAccountJson::from(found)))
}

/// Modify a service account
///
/// Changes its `name` or `role` (`owner` or `member`). Refused on an archived project. Needs
/// `projects.write`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/service_accounts/{service_account_id}",
    operation_id = "update-project-service-account",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("service_account_id" = String, Path, description = "Id of the service account."),
    ),
    request_body = UpdateServiceAccountRequest,
    responses(
        (status = 200, description = "The service account after the change.", body = ServiceAccountJson),
        (status = 400, description = "The body is invalid or empty, or the project is archived (`project_archived`).", body = ErrorResponse),
        (status = 404, description = "No project, or no service account of the project, has this id.", body = ErrorResponse),
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
    let body: UpdateServiceAccountRequest = body.parse().await?;
    if body.name.is_none() && body.role.is_none() {
        return Err(ApiError::invalid_request(
            "Send at least one of `name` and `role`.",
        ));
    }
    let update = ServiceAccountUpdate {
        name: body.name.map(|n| KeyName::parse("name", &n)).transpose()?,
        role: body.role,
    };
    let ((project_id, account_id), now) = (path.into_inner(), state.clock.now());
    let changed = services::write(&state, move |conn| {
        service_accounts::update(conn, &caller, &project_id, &account_id, update, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ServiceAccountJson::from(changed)))
}

/// Delete a service account
///
/// Deletes the service account and, in the same transaction, every key it owns: they stop
/// working at once, on every replica. Refused on an archived project. Needs `projects.write`.
#[utoipa::path(
    delete,
    path = "/organization/projects/{project_id}/service_accounts/{service_account_id}",
    operation_id = "delete-project-service-account",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("service_account_id" = String, Path, description = "Id of the service account."),
    ),
    responses(
        (status = 200, description = "The service account and its keys were deleted.", body = ServiceAccountDeleted),
        (status = 400, description = "The project is archived (`project_archived`), or the request has a query parameter.", body = ErrorResponse),
        (status = 404, description = "No project, or no service account of the project, has this id.", body = ErrorResponse),
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
    let ((project_id, account_id), now) = (path.into_inner(), state.clock.now());
    let id = account_id.clone();
    services::write(&state, move |conn| {
        service_accounts::delete(conn, &caller, &project_id, &id, now)
    })
    .await?;
    tracing::info!(service_account_id = %account_id, "service account deleted");
    Ok(HttpResponse::Ok().json(ServiceAccountDeleted {
        object: ServiceAccountDeletedObject::Deleted,
        id: account_id,
        deleted: true,
    }))
}

/// Create a key for a service account
///
/// Makes another key (`sk-svcacct-…`) for the service account; its secret is in this response
/// and never again. `scopes` are free-form strings for the services behind the proxy, each
/// covered by the caller's own effective permissions (no escalation). Refused on an archived
/// project. Needs `projects.write`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys",
    operation_id = "CreateanAPIkeyforaserviceaccount",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("service_account_id" = String, Path, description = "Id of the service account."),
    ),
    request_body = CreateServiceAccountKeyRequest,
    responses(
        (status = 200, description = "The new key, with its secret.", body = ServiceAccountApiKeyJson),
        (status = 400, description = "The body is invalid, or the project is archived (`project_archived`).", body = ErrorResponse),
        (status = 404, description = "No project, or no service account of the project, has this id.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create_key(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: CreateServiceAccountKeyRequest = body.parse_or_default().await?;
    let ((project_id, account_id), now) = (path.into_inner(), state.clock.now());
    let asked = Expiry::parse(body.expires_in_seconds, body.expires_at)?;
    let new = NewProjectKey {
        name: KeyName::parse("name", body.name.as_deref().unwrap_or(FIRST_KEY_NAME))?,
        scopes: Permissions::parse("scopes", &body.scopes.unwrap_or_default())?,
        expires_at: state.key_lifetime.expires_at(asked, now)?,
        mcp: crate::routes::mcp::requested(body.mcp, state.cache.mcp_presets())?,
    };
    let issued = services::write(&state, move |conn| {
        service_accounts::create_key(conn, &caller, &project_id, &account_id, new, now)
    })
    .await?;
    tracing::info!(key_id = %issued.key.key.id, "service account key created");
    Ok(HttpResponse::Ok().json(key_json(issued, state.cache.mcp_presets())))
}

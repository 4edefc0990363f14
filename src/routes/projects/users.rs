//! `/organization/projects/{project_id}/users`: the organisation members who belong to a
//! project, as OpenAI's `organization.project.user`. The rules live in
//! `services::project_users`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::{Email, ProjectRole, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams, RequestBody};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::project_user::{self, ProjectUser};
use crate::models::user::User;
use crate::routes::list::{List, Pagination};
use crate::routes::method_not_allowed;
use crate::routes::projects::no_page_after;
use crate::services::project_users::{self, Member};
use crate::services::{self, projects};
use crate::state::AppState;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects/{project_id}/users")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/projects/{project_id}/users/{user_id}")
            .route(web::get().to(retrieve))
            .route(web::post().to(modify))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, POST, DELETE")),
    );
}

/// Always `organization.project.user`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ProjectUserObject {
    #[serde(rename = "organization.project.user")]
    ProjectUser,
}

/// Always `organization.project.user.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ProjectUserDeletedObject {
    #[serde(rename = "organization.project.user.deleted")]
    Deleted,
}

/// A member of a project.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectUser)]
pub struct ProjectUserJson {
    pub object: ProjectUserObject,
    /// The user's id (the same as in `/organization/users`).
    #[schema(example = "user_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    /// The user's name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The user's email address; `null` for an owner bootstrapped without one.
    #[schema(required = true)]
    pub email: Option<String>,
    /// The user's role in this project: `owner` or `member`.
    pub role: ProjectRole,
    /// When the user was added to the project, in Unix seconds.
    #[schema(example = 1763891200)]
    pub added_at: i64,
}

impl From<(ProjectUser, User)> for ProjectUserJson {
    fn from((member, user): (ProjectUser, User)) -> Self {
        Self {
            object: ProjectUserObject::ProjectUser,
            id: user.id,
            name: user.name,
            email: user.email,
            role: ProjectRole::from_db(&member.role),
            added_at: member.added_at,
        }
    }
}

/// Confirmation of a removal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectUserDeleteResponse {
    pub object: ProjectUserDeletedObject,
    /// Id of the user removed from the project.
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of an addition: the member by `user_id` or by `email` (exactly one), and a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUserCreateRequest {
    /// Id of an enabled member of the organisation.
    #[schema(nullable = true)]
    pub user_id: Option<String>,
    /// Email address of an enabled member of the organisation, instead of `user_id`.
    #[schema(nullable = true)]
    pub email: Option<String>,
    /// `owner` or `member`.
    #[schema(value_type = ProjectRole, required = true)]
    pub role: Option<ProjectRole>,
}

impl RequestBody for ProjectUserCreateRequest {
    const FIELDS: &'static [&'static str] = &["user_id", "email", "role"];

    fn expects(field: &str) -> String {
        match field {
            "role" => "`owner` or `member`".to_owned(),
            "email" => "an email address, or null".to_owned(),
            _ => "a user id, or null".to_owned(),
        }
    }
}

/// Body of a role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUserUpdateRequest {
    /// The new role: `owner` or `member`.
    #[schema(value_type = ProjectRole, required = true)]
    pub role: Option<ProjectRole>,
}

impl RequestBody for ProjectUserUpdateRequest {
    const FIELDS: &'static [&'static str] = &["role"];

    fn expects(_: &str) -> String {
        "`owner` or `member`".to_owned()
    }
}

/// Query parameters of the list (documentation only).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ProjectUserListQuery {
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, default = 20)]
    limit: Option<String>,
    /// A user id: the page starts right after this member. Use the `last_id` of the previous
    /// page.
    after: Option<String>,
}

/// List project users
///
/// Returns one page of a project's members, in the order they were added (ties by id). An
/// archived project's members can still be listed.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/users",
    operation_id = "list-project-users",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project."), ProjectUserListQuery),
    responses(
        (status = 200, description = "One page of the project's members.", body = List<ProjectUserJson>),
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
    let (members, has_more) = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        let cursor = match &page.after {
            Some(id) if ids::plausible(id) => Some(
                project_user::cursor_of(conn, &project_id, id)?.ok_or_else(|| no_page_after(id))?,
            ),
            Some(id) => return Err(no_page_after(id)),
            None => None,
        };
        let mut members =
            project_user::list_page(conn, &project_id, cursor.as_ref(), page.limit + 1)?;
        let has_more = members.len() as i64 > page.limit;
        members.truncate(page.limit as usize);
        Ok((members, has_more))
    })
    .await?;
    let data = members.into_iter().map(ProjectUserJson::from).collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |m: &ProjectUserJson| &m.id)))
}

/// Create project user
///
/// Adds an existing, enabled member of the organisation to an active project, named by
/// `user_id` or (as an alternative upstream also takes) by `email`, with the role `owner` or
/// `member`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/users",
    operation_id = "create-project-user",
    tag = "Projects",
    params(("project_id" = String, Path, description = "Id of the project.")),
    request_body = ProjectUserCreateRequest,
    responses(
        (status = 200, description = "The new member of the project.", body = ProjectUserJson),
        (status = 404, description = "No project has this id, or no organisation member has this `user_id` or `email`.", body = ErrorResponse),
        (status = 409, description = "The user is disabled (`user_disabled`) or a member of the project already (`already_member`).", body = ErrorResponse),
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
    let body: ProjectUserCreateRequest = body.parse().await?;
    let member = match (body.user_id, body.email) {
        (Some(id), None) => Member::Id(id),
        (None, Some(email)) => Member::Email(Email::parse("email", &email)?),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "Name the user by `user_id` or by `email`, not both.",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid_param(
                "user_id",
                "`user_id` (or `email`) is required: name the organisation member to add.",
            ));
        }
    };
    let role = required_role(body.role)?;
    let (project_id, now) = (project_id.into_inner(), state.clock.now());
    let added = services::write(&state, move |conn| {
        project_users::add(conn, &caller, &project_id, member, role, now)
    })
    .await?;
    tracing::info!(project_id = %added.0.project_id, user_id = %added.0.user_id, "project member added");
    Ok(HttpResponse::Ok().json(ProjectUserJson::from(added)))
}

fn required_role(role: Option<ProjectRole>) -> Result<ProjectRole, ApiError> {
    role.ok_or_else(|| ApiError::invalid_param("role", "`role` is required: `owner` or `member`."))
}

/// Retrieve project user
///
/// Returns one member of a project.
#[utoipa::path(
    get,
    path = "/organization/projects/{project_id}/users/{user_id}",
    operation_id = "retrieve-project-user",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("user_id" = String, Path, description = "Id of the user."),
    ),
    responses(
        (status = 200, description = "The member.", body = ProjectUserJson),
        (status = 404, description = "No project has this id, or the user is not a member of it.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
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
    let (project_id, user_id) = path.into_inner();
    let found = run_blocking(&state.pool, move |conn| {
        projects::existing(conn, &project_id)?;
        project_users::member_of(conn, &project_id, &user_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ProjectUserJson::from(found)))
}

/// Modify project user
///
/// Changes a member's role in an active project. Takes effect on the member's project keys
/// from their next request.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/users/{user_id}",
    operation_id = "modify-project-user",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("user_id" = String, Path, description = "Id of the user."),
    ),
    request_body = ProjectUserUpdateRequest,
    responses(
        (status = 200, description = "The member after the change.", body = ProjectUserJson),
        (status = 404, description = "No project has this id, or the user is not a member of it.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn modify(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: ProjectUserUpdateRequest = body.parse().await?;
    let role = required_role(body.role)?;
    let ((project_id, user_id), now) = (path.into_inner(), state.clock.now());
    let changed = services::write(&state, move |conn| {
        project_users::set_role(conn, &caller, &project_id, &user_id, role, now)
    })
    .await?;
    tracing::info!(project_id = %changed.0.project_id, user_id = %changed.0.user_id, "project member updated");
    Ok(HttpResponse::Ok().json(ProjectUserJson::from(changed)))
}

/// Delete project user
///
/// Removes a member from an active project. Their project keys are kept but refused from the
/// next request on (on every replica); they show as inactive.
#[utoipa::path(
    delete,
    path = "/organization/projects/{project_id}/users/{user_id}",
    operation_id = "delete-project-user",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("user_id" = String, Path, description = "Id of the user."),
    ),
    responses(
        (status = 200, description = "The user was removed from the project.", body = ProjectUserDeleteResponse),
        (status = 400, description = "The project is archived (`project_archived`), or the request has a query parameter.", body = ErrorResponse),
        (status = 404, description = "No project has this id, or the user is not a member of it.", body = ErrorResponse),
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
    let ((project_id, user_id), now) = (path.into_inner(), state.clock.now());
    let id = user_id.clone();
    services::write(&state, move |conn| {
        project_users::remove(conn, &caller, &project_id, &id, now)
    })
    .await?;
    tracing::info!(user_id = %user_id, "project member removed");
    Ok(HttpResponse::Ok().json(ProjectUserDeleteResponse {
        object: ProjectUserDeletedObject::Deleted,
        id: user_id,
        deleted: true,
    }))
}

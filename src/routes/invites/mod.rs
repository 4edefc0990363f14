//! `/organization/invites`: asking people to join, and (without an admin key) accepting. The
//! rules live in `services::invites`; reads go straight to the model.

pub mod json;

use std::collections::HashMap;

use actix_web::http::header::USER_AGENT;
use actix_web::{HttpRequest, HttpResponse, web};

use self::json::{
    AcceptInviteRequest, AcceptInviteResponse, InviteCreateResponse, InviteDeleted,
    InviteDeletedObject, InviteJson, InviteListQuery, InviteProject, InviteRequest,
    MAX_INVITE_PROJECTS,
};
use crate::audit::Origin;
use crate::auth::AdminKey;
use crate::db::{DbConnection, run_blocking};
use crate::domain::secret;
use crate::domain::{Email, Expiry, KeyName, PersonName, PhoneNumber, ProjectRole, Scope};
use crate::error::responses::{BodyErrors, RateLimited, ServerError, SharedErrors, Unavailable};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::invite::{self, Invite};
use crate::models::invite_project;
use crate::routes::admin_api_keys::json::AdminApiKeyCreateResponse;
use crate::routes::list::{List, Pagination};
use crate::routes::method_not_allowed;
use crate::routes::users::json::UserJson;
use crate::services::{self, invites};
use crate::state::AppState;

/// Registers the routes that need an admin key (relative to the authenticated
/// `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/invites")
            .name("invites")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/invites/{invite_id}")
            .name("invite")
            .route(web::get().to(retrieve))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, DELETE")),
    );
}

/// The acceptance resource, whose credential is the invite token, not an admin key: it must
/// be registered before the authenticated `/organization` scope, which would otherwise match.
pub fn accept_resource() -> actix_web::Resource {
    web::resource("/organization/invites/accept")
        .name("invite_accept")
        .route(web::post().to(accept))
        .default_service(method_not_allowed("POST"))
}

/// List invites
///
/// Returns one page of the organisation's invites, oldest first (ties by id, so paging never
/// skips or repeats one), whatever their status. Accept tokens are never listed.
#[utoipa::path(
    get,
    path = "/organization/invites",
    operation_id = "list-invites",
    tag = "Invites",
    params(InviteListQuery),
    responses(
        (status = 200, description = "One page of invites.", body = List<InviteJson>),
        (status = 400, description = "`limit` or `after` is invalid, or the query has a parameter this operation does not take; `param` names it.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersRead)?;
    let page = parse_list_query(req.query_string())?;
    let (invites, has_more) = run_blocking(&state.pool, move |conn| {
        let cursor = match &page.after {
            None => None,
            Some(id) => Some(invite::cursor_of(conn, id)?.ok_or_else(|| no_page_after(id))?),
        };
        let mut invites = invite::list_page(conn, cursor.as_ref(), page.limit + 1)?;
        let has_more = invites.len() as i64 > page.limit;
        invites.truncate(page.limit as usize);
        Ok((with_projects(conn, invites)?, has_more))
    })
    .await?;
    let now = state.clock.now();
    let data = invites
        .into_iter()
        .map(|(found, projects)| InviteJson::shown(found, projects, now))
        .collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |shown: &InviteJson| &shown.id)))
}

/// `invites` with the projects each grants (one query for the page).
fn with_projects(
    conn: &mut DbConnection,
    invites: Vec<Invite>,
) -> diesel::QueryResult<Vec<(Invite, Vec<InviteProject>)>> {
    let ids: Vec<&str> = invites.iter().map(|found| found.id.as_str()).collect();
    let mut by_invite: HashMap<String, Vec<InviteProject>> = HashMap::new();
    for grant in invite_project::of_invites(conn, &ids)? {
        by_invite
            .entry(grant.invite_id.clone())
            .or_default()
            .push(grant.into());
    }
    Ok(invites
        .into_iter()
        .map(|found| {
            let projects = by_invite.remove(&found.id).unwrap_or_default();
            (found, projects)
        })
        .collect())
}

fn parse_list_query(query: &str) -> Result<Pagination, ApiError> {
    let mut query = QueryParams::parse(query)?;
    let page = Pagination::take(&mut query, Order::Asc, false)?;
    query.finish()?;
    if let Some(id) = &page.after
        && !ids::plausible(id)
    {
        return Err(no_page_after(id));
    }
    Ok(page)
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => format!("No invite with id `{id}` exists, so there is no page after it."),
            None => "`after` must be the id of an existing invite (`invite-` and 24 letters or \
                     digits)."
                .to_owned(),
        },
    )
}

/// Create an invite
///
/// Invites an email address to join as `owner` or `reader`. This service sends no email: the
/// response carries the invite's `accept_token` (an extension), shown only here, which the
/// invitee passes to the accept operation. Refused with 409 if a member already has the
/// address or an invite for it is pending; an expired invite does not block a new one.
#[utoipa::path(
    post,
    path = "/organization/invites",
    operation_id = "inviteUser",
    tag = "Invites",
    request_body = InviteRequest,
    responses(
        (status = 200, description = "The invite, with its accept token.", body = InviteCreateResponse),
        (status = 404, description = "A project named in `projects` does not exist (`not_found`, `param` is `projects`).", body = ErrorResponse),
        (status = 409, description = "A member has this email address (`email_taken`), or an invite for it is pending (`invite_pending`).", body = ErrorResponse),
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
    caller.require(Scope::UsersWrite)?;
    let new = parse_create(body.parse().await?)?;
    let (now, ttl) = (state.clock.now(), state.invite_ttl_secs);
    let created = services::write(&state, move |conn| {
        invites::create(conn, &caller, new, ttl, now)
    })
    .await?;
    tracing::info!(invite_id = %created.invite.id, "invite created");
    Ok(HttpResponse::Ok().json(InviteCreateResponse {
        accept_token: created.token.expose().to_owned(),
        invite: InviteJson::shown(
            created.invite,
            created.projects.into_iter().map(Into::into).collect(),
            now,
        ),
    }))
}

fn parse_create(body: InviteRequest) -> Result<invites::NewInviteRequest, ApiError> {
    let email = body
        .email
        .ok_or_else(|| ApiError::invalid_param("email", "`email` is required."))?;
    let role = body.role.ok_or_else(|| {
        ApiError::invalid_param("role", "`role` is required: `owner` or `reader`.")
    })?;
    Ok(invites::NewInviteRequest {
        email: Email::parse("email", &email)?,
        role,
        details: member_details(body.first_name, body.last_name, body.phone_number)?,
        projects: project_grants(body.projects.unwrap_or_default())?,
    })
}

/// The projects an invite grants, each named once with a valid role.
fn project_grants(projects: Vec<InviteProject>) -> Result<Vec<(String, ProjectRole)>, ApiError> {
    if projects.len() > MAX_INVITE_PROJECTS {
        return Err(ApiError::invalid_param(
            "projects",
            format!("An invite may grant at most {MAX_INVITE_PROJECTS} projects."),
        ));
    }
    let mut grants: Vec<(String, ProjectRole)> = Vec::with_capacity(projects.len());
    for project in projects {
        let role = ProjectRole::parse("projects", &project.role).map_err(|_| {
            ApiError::invalid_param(
                "projects",
                "Each project's `role` must be `owner` or `member`.",
            )
        })?;
        if grants.iter().any(|(id, _)| *id == project.id) {
            return Err(ApiError::invalid_param(
                "projects",
                "Each project may be named once in `projects`.",
            ));
        }
        grants.push((project.id, role));
    }
    Ok(grants)
}

/// The member details of an invite or an acceptance, checked (absent and `null` alike mean
/// none).
fn member_details(
    first_name: Option<String>,
    last_name: Option<String>,
    phone_number: Option<String>,
) -> Result<invites::MemberDetails, ApiError> {
    let name =
        |param, raw: Option<String>| raw.map(|raw| PersonName::parse(param, &raw)).transpose();
    Ok(invites::MemberDetails {
        first_name: name("first_name", first_name)?,
        last_name: name("last_name", last_name)?,
        phone_number: phone_number
            .map(|raw| PhoneNumber::parse("phone_number", &raw))
            .transpose()?,
    })
}

/// Retrieve an invite
///
/// Its `status` is computed when asked: `expired` from `expires_at` on, unless accepted.
#[utoipa::path(
    get,
    path = "/organization/invites/{invite_id}",
    operation_id = "retrieve-invite",
    tag = "Invites",
    params(("invite_id" = String, Path, description = "Id of the invite.")),
    responses(
        (status = 200, description = "The invite.", body = InviteJson),
        (status = 404, description = "No invite has this id.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    invite_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersRead)?;
    let invite_id = invite_id.into_inner();
    if !ids::plausible(&invite_id) {
        return Err(invites::no_such_invite(&invite_id));
    }
    let id = invite_id.clone();
    let found = run_blocking(&state.pool, move |conn| {
        let found = invite::find(conn, &id)?;
        Ok(with_projects(conn, found.into_iter().collect())?)
    })
    .await?;
    let (found, projects) = found
        .into_iter()
        .next()
        .ok_or_else(|| invites::no_such_invite(&invite_id))?;
    Ok(HttpResponse::Ok().json(InviteJson::shown(found, projects, state.clock.now())))
}

/// Delete an invite
///
/// Withdraws a pending or expired invite: its token stops working at once. An accepted invite
/// cannot be deleted (409); remove the member with the users API instead.
#[utoipa::path(
    delete,
    path = "/organization/invites/{invite_id}",
    operation_id = "delete-invite",
    tag = "Invites",
    params(("invite_id" = String, Path, description = "Id of the invite to delete.")),
    responses(
        (status = 200, description = "The invite was deleted.", body = InviteDeleted),
        (status = 404, description = "No invite has this id.", body = ErrorResponse),
        (status = 409, description = "The invite was accepted (`invite_accepted`).", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    invite_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersWrite)?;
    let (invite_id, now) = (invite_id.into_inner(), state.clock.now());
    let id = invite_id.clone();
    services::write(&state, move |conn| invites::delete(conn, &caller, &id, now)).await?;
    tracing::info!(invite_id = %invite_id, "invite deleted");
    Ok(HttpResponse::Ok().json(InviteDeleted {
        object: InviteDeletedObject::Deleted,
        id: invite_id,
        deleted: true,
    }))
}

/// Accept an invite
///
/// Joins the organisation with an invite's `accept_token` (an extension). No admin key is
/// needed: the token is the credential, and it works once. The new member gets the invite's
/// email and role; the `first_name`, `last_name` and `phone_number` sent, or else the
/// invite's; the `name` sent, or else one derived from the first and last names (`first
/// last`, or the one given; without either, `name` is required); and a first admin key
/// holding every scope the role allows (expiring as the organisation's default key lifetime
/// says: by default, never), whose secret `value` only this response carries. A token that is malformed,
/// unknown, withdrawn, expired or already used is refused with the same 400
/// (`invalid_invite_token`), whichever it is.
#[utoipa::path(
    post,
    path = "/organization/invites/accept",
    operation_id = "accept-invite",
    tag = "Invites",
    request_body = AcceptInviteRequest,
    responses(
        (status = 200, description = "The new member and their first key, with its secret value.", body = AcceptInviteResponse),
        (status = 409, description = "A member took the invite's email address in the meantime (`email_taken`).", body = ErrorResponse),
        BodyErrors,
        (status = 429, response = RateLimited),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
pub async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (token, acceptance) = usable_token(&state, &req, body.parse().await?).await?;
    let now = state.clock.now();
    let origin = Origin::new(
        state.trusted_proxies.client_ip_of(&req),
        req.headers().get(USER_AGENT).map(|v| v.as_bytes()),
    );
    let accepted = services::write(&state, move |conn| {
        invites::accept(conn, &token, acceptance, origin, now)
    })
    .await?;
    tracing::info!(user_id = %accepted.user.id, key_id = %accepted.issued.key.0.id, "invite accepted");
    Ok(HttpResponse::Ok().json(AcceptInviteResponse {
        user: UserJson::from(accepted.user),
        api_key: AdminApiKeyCreateResponse::issued(
            accepted.issued,
            &state.usage,
            state.cache.mcp_presets(),
        ),
    }))
}

/// The token and what else an acceptance sends, once a read (no write transaction, no lock)
/// has found the token pending: a flood of invented tokens never queues behind the writes. Like a
/// lookup of an unknown admin key, a lookup that finds no pending invite is charged to the
/// client's budget (`lookup_limit`: a unit taken before, given back when the token is
/// pending), and a client with none left gets 429 without a lookup.
async fn usable_token(
    state: &AppState,
    req: &HttpRequest,
    body: AcceptInviteRequest,
) -> Result<(String, invites::Acceptance), ApiError> {
    let token = (body.token.clone())
        .ok_or_else(|| ApiError::invalid_param("token", "`token` is required."))?;
    if !secret::is_well_formed_invite_token(&token) {
        return Err(invites::invalid_invite_token());
    }
    let acceptance = acceptance(body, state)?;
    let (hash, now) = (secret::hash_key(&token), state.clock.now());
    let client = state.trusted_proxies.client_of(req);
    let unit = state
        .lookup_limit
        .take(client)
        .map_err(crate::auth::rate_limited)?;
    let pending = run_blocking(&state.pool, move |conn| {
        Ok(invites::is_pending(conn, &hash, now)?)
    })
    .await?;
    if !pending {
        return Err(invites::invalid_invite_token());
    }
    state.lookup_limit.refund(unit);
    Ok((token, acceptance))
}

/// What an acceptance sends besides its token, checked, and when the first key it makes
/// expires (the organisation's default key lifetime).
fn acceptance(
    body: AcceptInviteRequest,
    state: &AppState,
) -> Result<invites::Acceptance, ApiError> {
    Ok(invites::Acceptance {
        name: (body.name.as_deref())
            .map(|raw| KeyName::parse("name", raw))
            .transpose()?,
        details: member_details(body.first_name, body.last_name, body.phone_number)?,
        first_key_expires_at: (state.key_lifetime)
            .expires_at(Expiry::Default, state.clock.now())?,
    })
}

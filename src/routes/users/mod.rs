//! `/organization/users`: the members of the organisation. The rules live in
//! `services::users`; reads go straight to the model.

pub mod json;

use actix_web::{HttpRequest, HttpResponse, web};

use self::json::{ModifyUserRequest, UserDeleted, UserDeletedObject, UserJson, UserListQuery};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::{Email, Invalid, KeyName, Permissions, PersonName, PhoneNumber, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, QueryParams};
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::user;
use crate::routes::list::{List, Pagination};
use crate::routes::method_not_allowed;
use crate::services::{self, users};
use crate::state::AppState;

/// The most email addresses one list request may filter on.
const MAX_EMAILS: usize = 100;

/// Registers this resource's routes (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .name("users")
            .route(web::get().to(list))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/users/{user_id}")
            .name("user")
            .route(web::get().to(retrieve))
            .route(web::post().to(modify))
            .route(web::delete().to(delete))
            .default_service(method_not_allowed("GET, POST, DELETE")),
    );
}

/// List users
///
/// Returns one page of the organisation's members, oldest first (ties by id, so paging never
/// skips or repeats one). Invited people appear once they accept.
#[utoipa::path(
    get,
    path = "/organization/users",
    operation_id = "list-users",
    tag = "Users",
    params(UserListQuery),
    responses(
        (status = 200, description = "One page of users.", body = List<UserJson>),
        (status = 400, description = "`limit`, `after` or `emails[]` is invalid; `param` names it.", body = ErrorResponse),
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
    let (page, emails) = parse_list_query(req.query_string())?;
    let (users, has_more) = run_blocking(&state.pool, move |conn| {
        let cursor = match &page.after {
            None => None,
            Some(id) => Some(user::cursor_of(conn, id)?.ok_or_else(|| no_page_after(id))?),
        };
        let mut users = user::list_page(conn, cursor.as_ref(), page.limit + 1, &emails)?;
        let has_more = users.len() as i64 > page.limit;
        users.truncate(page.limit as usize);
        Ok((users, has_more))
    })
    .await?;
    let data = users.into_iter().map(UserJson::from).collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |user: &UserJson| &user.id)))
}

fn parse_list_query(query: &str) -> Result<(Pagination, Vec<String>), ApiError> {
    let mut query = QueryParams::parse(query)?;
    let page = Pagination::take(&mut query, Order::Asc, false)?;
    if let Some(id) = &page.after
        && !ids::plausible(id)
    {
        return Err(no_page_after(id));
    }
    let mut raw = query.take_all("emails[]", MAX_EMAILS)?;
    raw.extend(query.take_all("emails", MAX_EMAILS)?);
    query.finish()?;
    if raw.len() > MAX_EMAILS {
        return Err(ApiError::invalid_param(
            "emails[]",
            format!("Filter on at most {MAX_EMAILS} email addresses at once."),
        ));
    }
    let emails = raw
        .iter()
        .map(|raw| Email::parse("emails[]", raw).map(Email::into_string))
        .collect::<Result<Vec<_>, Invalid>>()?;
    Ok((page, emails))
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => format!("No user with id `{id}` exists, so there is no page after it."),
            None => {
                "`after` must be the id of an existing user (`user_` and 24 letters or digits)."
                    .to_owned()
            }
        },
    )
}

/// Retrieve a user
#[utoipa::path(
    get,
    path = "/organization/users/{user_id}",
    operation_id = "retrieve-user",
    tag = "Users",
    params(("user_id" = String, Path, description = "Id of the user.")),
    responses(
        (status = 200, description = "The user.", body = UserJson),
        (status = 404, description = "No user has this id.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersRead)?;
    let user_id = user_id.into_inner();
    if !ids::plausible(&user_id) {
        return Err(users::no_such_user(&user_id));
    }
    let id = user_id.clone();
    let found = run_blocking(&state.pool, move |conn| Ok(user::find(conn, &id)?)).await?;
    let found = found.ok_or_else(|| users::no_such_user(&user_id))?;
    Ok(HttpResponse::Ok().json(UserJson::from(found)))
}

/// Modify a user
///
/// Changes a member's `role` and, as extensions, `name`, `enabled`, `permissions`,
/// `first_name`, `last_name` and `phone_number`. A partial update, as upstream's: fields left
/// out keep their value (seed 000's `updateUser` replaces every field; this does not), and
/// `null` clears a member detail. A `name` derived from the first and last names follows
/// them when they change, unless `name` is sent too. A role
/// is a ceiling on the user's keys' scopes, and `permissions` on their permissions downstream:
/// demoting an owner to `reader` takes write access and every permission outside the new
/// ceiling from their keys on the next request (on every replica); disabling a user makes all
/// their keys answer 401 `user_disabled` until they are enabled again. Re-enabling,
/// promoting or widening a ceiling needs the caller to cover what the user's keys regain. A change that would leave no enabled owner
/// with an enabled key holding `admin_api_keys.write` and `users.write` is refused with 409.
#[utoipa::path(
    post,
    path = "/organization/users/{user_id}",
    operation_id = "modify-user",
    tag = "Users",
    params(("user_id" = String, Path, description = "Id of the user to change.")),
    request_body = ModifyUserRequest,
    responses(
        (status = 200, description = "The user after the change.", body = UserJson),
        (status = 404, description = "No user has this id.", body = ErrorResponse),
        (status = 409, description = "The change would leave no one able to run the organisation.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn modify(
    caller: AdminKey,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersWrite)?;
    let update = parse_update(body.parse().await?)?;
    let (user_id, now) = (user_id.into_inner(), state.clock.now());
    let changed = services::write(&state, move |conn| {
        users::update(conn, &caller, &user_id, update, now)
    })
    .await?;
    tracing::info!(user_id = %changed.id, "user updated");
    Ok(HttpResponse::Ok().json(UserJson::from(changed)))
}

/// The changes a body asks for: at least one; the upstream fields this service has no use for
/// only as `null`.
fn parse_update(body: ModifyUserRequest) -> Result<users::UserUpdate, ApiError> {
    for (param, value) in [
        ("role_id", &body.role_id),
        ("technical_level", &body.technical_level),
        ("developer_persona", &body.developer_persona),
    ] {
        if value.as_ref().is_some_and(|value| !value.is_null()) {
            return Err(ApiError::invalid_param(
                param,
                format!("`{param}` is not supported here: set `role` to `owner` or `reader`."),
            ));
        }
    }
    let update = users::UserUpdate {
        role: body.role,
        name: body
            .name
            .map(|name| KeyName::parse("name", &name))
            .transpose()?,
        enabled: body.enabled,
        permissions: body
            .permissions
            .map(|raw| Permissions::parse("permissions", &raw))
            .transpose()?,
        first_name: person_name("first_name", body.first_name)?,
        last_name: person_name("last_name", body.last_name)?,
        phone_number: body
            .phone_number
            .map(|raw| {
                raw.map(|raw| PhoneNumber::parse("phone_number", &raw))
                    .transpose()
            })
            .transpose()?,
    };
    if update.role.is_none()
        && update.name.is_none()
        && update.enabled.is_none()
        && update.permissions.is_none()
        && update.first_name.is_none()
        && update.last_name.is_none()
        && update.phone_number.is_none()
    {
        return Err(ApiError::invalid_request(
            "Send at least one of `role`, `name`, `enabled`, `permissions`, `first_name`, \
             `last_name` and `phone_number`.",
        ));
    }
    Ok(update)
}

/// A first or last name of a change: absent, `null` (clear it) or a name.
fn person_name(
    param: &'static str,
    raw: Option<Option<String>>,
) -> Result<Option<Option<PersonName>>, Invalid> {
    raw.map(|raw| raw.map(|raw| PersonName::parse(param, &raw)).transpose())
        .transpose()
}

/// Delete a user
///
/// Removes the member and, in the same transaction, every key they own (each recorded as
/// `api_key.deleted`): their keys stop authenticating at once. Refused with 409 if no one
/// would be left able to run the organisation.
#[utoipa::path(
    delete,
    path = "/organization/users/{user_id}",
    operation_id = "delete-user",
    tag = "Users",
    params(("user_id" = String, Path, description = "Id of the user to delete.")),
    responses(
        (status = 200, description = "The user and their keys were deleted.", body = UserDeleted),
        (status = 404, description = "No user has this id.", body = ErrorResponse),
        (status = 409, description = "Deleting them would leave no one able to run the organisation.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::UsersWrite)?;
    let (user_id, now) = (user_id.into_inner(), state.clock.now());
    let id = user_id.clone();
    services::write(&state, move |conn| users::delete(conn, &caller, &id, now)).await?;
    tracing::info!(user_id = %user_id, "user deleted");
    Ok(HttpResponse::Ok().json(UserDeleted {
        object: UserDeletedObject::Deleted,
        id: user_id,
        deleted: true,
    }))
}

//! `/organization/admin_api_keys`: list, create, retrieve and delete admin keys.

pub mod json;
pub mod rotate;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use self::json::{
    AdminApiKey, AdminApiKeyCreateResponse, AdminApiKeyDeleted, ApiKeyList,
    CreateAdminApiKeyRequest, DeletedObject, ListObject, ListOrder, ListQuery,
    UpdateAdminApiKeyRequest,
};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::auth::{self, AdminKey, ApiKeySecret};
use crate::db::{run_blocking, write_transaction};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::Json;
use crate::models::admin_api_key::{
    self, KeyChanges, KeyStatus, ListFilter, NewAdminApiKey, Order,
};
use crate::routes::method_not_allowed;
use crate::scopes::{Scope, Scopes};
use crate::startup::AppState;

/// The longest lifetime a key can be given: 365 days.
pub const MAX_EXPIRES_IN_SECONDS: i64 = 31_536_000;
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// Registers this resource's routes (relative to the authenticated `/organization` scope);
/// other methods on its paths answer 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin_api_keys")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}")
            .route(web::get().to(retrieve))
            .route(web::post().to(update))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}/rotate")
            .route(web::post().to(rotate::rotate))
            .default_service(web::to(method_not_allowed)),
    );
}

/// List admin API keys
///
/// Returns one page of the organisation's admin keys in creation order, oldest first unless
/// `order=desc`. Page with `after` set to the previous page's `last_id`; keys made in the same
/// second keep a stable order, so paging never skips or repeats a key.
#[utoipa::path(
    get,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-list",
    tag = "Admin API keys",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of keys.", body = ApiKeyList),
        (status = 400, description = "`limit`, `order`, `after`, `search` or `status` is invalid; `param` names it.", body = ErrorResponse),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let ListParams {
        after,
        order,
        limit,
        mut filter,
    } = validate_list_query(query.into_inner())?;
    filter.now = state.clock.now();
    let rows = run_blocking(&state.pool, move |conn| {
        let cursor = match &after {
            None => None,
            Some(id) => Some(admin_api_key::cursor_of(conn, id)?.ok_or_else(|| {
                ApiError::invalid_param(
                    "after",
                    format!(
                        "No admin API key with id {id:?} exists, so there is no page after it."
                    ),
                )
            })?),
        };
        Ok(admin_api_key::list_page(
            conn,
            cursor.as_ref(),
            order,
            limit + 1,
            &filter,
        )?)
    })
    .await?;
    for (row, _) in &rows {
        state.auth_cache.note_stored_use(&row.id, row.last_used_at);
    }
    let has_more = rows.len() as i64 > limit;
    let data: Vec<AdminApiKey> = rows
        .into_iter()
        .take(limit as usize)
        .map(|(row, owner)| AdminApiKey::from_row(row, owner, &state.usage))
        .collect();
    Ok(HttpResponse::Ok().json(ApiKeyList {
        object: ListObject::List,
        first_id: data.first().map(|key| key.id.clone()),
        last_id: data.last().map(|key| key.id.clone()),
        has_more,
        data,
    }))
}

/// Create an admin API key
///
/// Makes a new key owned by the owner of the calling key. The response is the only place the
/// secret `value` ever appears: the service stores just its SHA-256.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-create",
    tag = "Admin API keys",
    request_body = CreateAdminApiKeyRequest,
    responses(
        (status = 200, description = "The new key, with its secret value.", body = AdminApiKeyCreateResponse),
        (status = 400, description = "The body is not valid JSON or a field is invalid; `param` names it.", body = ErrorResponse),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 413, description = "The body is larger than the limit.", body = ErrorResponse),
        (status = 415, description = "The body is not `application/json`.", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    Json(body): Json<CreateAdminApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let name = validate_name(body.name.as_deref())?;
    let lifetime = validate_expires_in(body.expires_in_seconds)?;
    let scopes = match body.scopes {
        None => caller.scopes,
        Some(requested) => validate_scopes(&caller, &requested)?,
    }
    .to_db();
    let now = state.clock.now();
    let creator_id = caller.key_id.clone();
    let cache = state.auth_cache.clone();
    let (secret, (row, owner)) = run_blocking(&state.pool, move |conn| {
        let issued = write_transaction(conn, |conn| {
            let actor = Actor::of_key(conn, &caller)?;
            let issued = issue_key(
                conn,
                &NewKey {
                    name: &name,
                    owner_id: &caller.owner_id,
                    scopes: &scopes,
                    created_at: now,
                    expires_at: lifetime.map(|seconds| now + seconds),
                },
            )?;
            record_created(conn, now, &actor, &issued.1.0)?;
            Ok::<_, ApiError>(issued)
        })?;
        // Here, not after the await: the commit stands even if the client goes away.
        cache.forget_unknown();
        Ok(issued)
    })
    .await?;
    tracing::info!(key_id = %row.id, by = %creator_id, "admin key created");
    Ok(HttpResponse::Ok().json(AdminApiKeyCreateResponse {
        key: AdminApiKey::from_row(row, owner, &state.usage),
        value: secret.expose().to_owned(),
    }))
}

/// Retrieve an admin API key
///
/// Returns one key as `create` returned it, without the secret value.
#[utoipa::path(
    get,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-get",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key.")),
    responses(
        (status = 200, description = "The key.", body = AdminApiKey),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 404, description = "No key has this id (or it was deleted).", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let key_id = key_id.into_inner();
    if !plausible_key_id(&key_id) {
        return Err(no_such_key(&key_id));
    }
    let now = state.clock.now();
    let view = match state.auth_cache.view(&key_id, now) {
        Ok(view) => view,
        Err(ticket) => {
            let id = key_id.clone();
            let found =
                run_blocking(&state.pool, move |conn| Ok(admin_api_key::find(conn, &id)?)).await?;
            let rendered = match found {
                Some((row, owner)) => {
                    let stored = AdminApiKey::stored(row.clone(), owner.clone());
                    let body =
                        serde_json::to_vec(&stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
                    Some(((row, owner), body.into()))
                }
                None => None,
            };
            let view = state.auth_cache.fill_view(ticket, rendered, now);
            view.ok_or_else(|| no_such_key(&key_id))?
        }
    };
    let (row, owner) = &view.key;
    if state.usage.overlay(&row.id, row.last_used_at) == row.last_used_at {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(view.body.clone()));
    }
    let shown = AdminApiKey::from_row(row.clone(), owner.clone(), &state.usage);
    Ok(HttpResponse::Ok().json(shown))
}

/// Delete an admin API key
///
/// Removes the key for good; it stops authenticating immediately. Deleting it again, or any
/// unknown id, answers 404.
#[utoipa::path(
    delete,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-delete",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to delete.")),
    responses(
        (status = 200, description = "The key was deleted.", body = AdminApiKeyDeleted),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 404, description = "No key has this id (or it was already deleted).", body = ErrorResponse),
        (status = 409, description = "Deleting it would leave no enabled, unexpired key able to manage keys.", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let key_id = key_id.into_inner();
    let now = state.clock.now();
    let deleted = plausible_key_id(&key_id) && {
        let (id, caller) = (key_id.clone(), caller.clone());
        let cache = state.auth_cache.clone();
        run_blocking(&state.pool, move |conn| {
            let deleted = keep_an_active_writer(conn, now, "delete", |conn| {
                let deleted = admin_api_key::delete(conn, &id)?;
                if deleted {
                    let actor = Actor::of_key(conn, &caller)?;
                    audit::record(
                        conn,
                        now,
                        &actor,
                        audit::API_KEY_DELETED,
                        &id,
                        &json!({ "id": id }),
                    )?;
                }
                Ok(deleted)
            })?;
            cache.forget_key(&id);
            Ok(deleted)
        })
        .await?
    };
    if !deleted {
        return Err(no_such_key(&key_id));
    }
    tracing::info!(key_id = %key_id, by = %caller.key_id, "admin key deleted");
    Ok(HttpResponse::Ok().json(AdminApiKeyDeleted {
        id: key_id,
        object: DeletedObject::Deleted,
        deleted: true,
    }))
}

/// Update an admin API key
///
/// Changes any of `name`, `enabled` and `scopes`; fields left out keep their value. Disabling
/// a key makes it answer 401 at once; re-enabling restores it with the same secret. A key can
/// only grant scopes it holds. A change that would leave no enabled key holding
/// `admin_api_keys.write` and valid for at least 5 more minutes is refused with 409.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-update",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to change.")),
    request_body = UpdateAdminApiKeyRequest,
    responses(
        (status = 200, description = "The key after the change.", body = AdminApiKey),
        (status = 400, description = "A field is invalid; `param` names it.", body = ErrorResponse),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks `admin_api_keys.write`, or a scope it tried to grant.", body = ErrorResponse),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The change would lock the organisation out.", body = ErrorResponse),
        (status = 413, description = "The body is larger than the limit.", body = ErrorResponse),
        (status = 415, description = "The body is not `application/json`.", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn update(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    Json(body): Json<UpdateAdminApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let key_id = key_id.into_inner();
    let changes = KeyChanges {
        name: body
            .name
            .as_deref()
            .map(|n| validate_name(Some(n)))
            .transpose()?,
        enabled: body.enabled,
        scopes: body
            .scopes
            .map(|requested| validate_scopes(&caller, &requested))
            .transpose()?
            .map(Scopes::to_db),
    };
    if changes.name.is_none() && changes.enabled.is_none() && changes.scopes.is_none() {
        return Err(ApiError::InvalidRequest {
            message: "Send at least one of `name`, `enabled` and `scopes`.".to_owned(),
            param: None,
            code: None,
        });
    }
    if !plausible_key_id(&key_id) {
        return Err(no_such_key(&key_id));
    }
    let now = state.clock.now();
    let mut requested = serde_json::Map::new();
    if let Some(name) = &changes.name {
        requested.insert("name".into(), json!(name));
    }
    if let Some(enabled) = changes.enabled {
        requested.insert("enabled".into(), json!(enabled));
    }
    if let Some(scopes) = &changes.scopes {
        requested.insert(
            "scopes".into(),
            json!(Scopes::from_db(scopes).iter().collect::<Vec<_>>()),
        );
    }
    let (id, caller_key) = (key_id.clone(), caller.clone());
    let cache = state.auth_cache.clone();
    let found = run_blocking(&state.pool, move |conn| {
        let exists = keep_an_active_writer(conn, now, "change", |conn| {
            // Re-enabling restores the key's scopes to use: only a caller holding them may.
            if changes.enabled == Some(true)
                && let Some((target, _)) = admin_api_key::find(conn, &id)?
            {
                caller_key.may_grant(Scopes::from_db(&target.scopes))?;
            }
            let exists = admin_api_key::update(conn, &id, &changes)?;
            if exists {
                let actor = Actor::of_key(conn, &caller_key)?;
                let details = json!({ "id": id, "changes_requested": requested });
                audit::record(conn, now, &actor, audit::API_KEY_UPDATED, &id, &details)?;
            }
            Ok(exists)
        })?;
        cache.forget_key(&id);
        Ok(if exists {
            admin_api_key::find(conn, &id)?
        } else {
            None
        })
    })
    .await?;
    let (row, owner) = found.ok_or_else(|| no_such_key(&key_id))?;
    tracing::info!(key_id = %row.id, by = %caller.key_id, "admin key updated");
    Ok(HttpResponse::Ok().json(AdminApiKey::from_row(row, owner, &state.usage)))
}

/// A writer only counts for the lock-out guard if it stays valid at least this long (5
/// minutes): otherwise rotating the last writer into a 1-second key would pass the guard and
/// lock the organisation out a moment later.
pub const GUARD_MIN_REMAINING_SECONDS: i64 = 300;

/// Runs `change` in a transaction that is rolled back with 409 if afterwards no enabled key
/// valid for at least [`GUARD_MIN_REMAINING_SECONDS`] holds `admin_api_keys.write`: the
/// organisation must never lock itself out.
pub(crate) fn keep_an_active_writer<T>(
    conn: &mut crate::db::DbConnection,
    now: i64,
    what: &str,
    change: impl FnOnce(&mut crate::db::DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    write_transaction(conn, |conn| {
        admin_api_key::lock_key_guard(conn)?;
        let result = change(conn)?;
        if !admin_api_key::any_active_writer(conn, now + GUARD_MIN_REMAINING_SECONDS)? {
            return Err(ApiError::Conflict {
                message: format!(
                    "Refusing to {what} this key: no enabled key holding \
                     `admin_api_keys.write` and valid for at least {GUARD_MIN_REMAINING_SECONDS} \
                     seconds would remain. Create or enable another such key first; if every \
                     such key is lost, `admin-api-keys bootstrap` makes a new one."
                ),
                code: "last_admin_key",
            });
        }
        Ok(result)
    })
}

/// Checks requested scopes: at least one, and none the caller lacks.
fn validate_scopes(caller: &AdminKey, requested: &[Scope]) -> Result<Scopes, ApiError> {
    let scopes: Scopes = requested.iter().copied().collect();
    if scopes.is_empty() {
        return Err(ApiError::invalid_param(
            "scopes",
            "`scopes` must name at least one scope.",
        ));
    }
    caller.may_grant(scopes)?;
    Ok(scopes)
}

/// What a new key is made of; `issue_key` adds the secret and the id.
pub(crate) struct NewKey<'a> {
    pub name: &'a str,
    pub owner_id: &'a str,
    pub scopes: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Draws a secret, stores the key under its hash and reads it back with its owner.
pub(crate) fn issue_key(
    conn: &mut crate::db::DbConnection,
    key: &NewKey<'_>,
) -> Result<(ApiKeySecret, admin_api_key::KeyWithOwner), ApiError> {
    let secret = auth::generate_key();
    let key_id = auth::random_id("key_");
    admin_api_key::insert(
        conn,
        &NewAdminApiKey {
            id: &key_id,
            name: key.name,
            key_hash: &secret.hash(),
            redacted_value: &secret.redacted(),
            owner_id: key.owner_id,
            created_at: key.created_at,
            expires_at: key.expires_at,
            scopes: key.scopes,
        },
    )?;
    let stored = admin_api_key::find(conn, &key_id)?.ok_or(diesel::result::Error::NotFound)?;
    Ok((secret, stored))
}

/// Records `api_key.created` for a key just issued.
pub(crate) fn record_created(
    conn: &mut crate::db::DbConnection,
    now: i64,
    actor: &Actor,
    key: &admin_api_key::AdminApiKeyRow,
) -> Result<(), ApiError> {
    let scopes: Vec<Scope> = Scopes::from_db(&key.scopes).iter().collect();
    let details = json!({
        "id": key.id,
        "data": { "scopes": scopes, "name": key.name, "expires_at": key.expires_at }
    });
    Ok(audit::record(
        conn,
        now,
        actor,
        audit::API_KEY_CREATED,
        &key.id,
        &details,
    )?)
}

pub(crate) fn no_such_key(key_id: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("No admin API key with id {key_id:?} exists."),
        param: Some("key_id"),
    }
}

/// Ids we issue are short and ASCII; anything else cannot exist and never reaches the database.
pub(crate) fn plausible_key_id(id: &str) -> bool {
    id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Cleans a key name: trimmed, 1 to 256 characters, no control characters.
pub fn validate_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name
        .ok_or_else(|| ApiError::invalid_param("name", "`name` is required."))?
        .trim();
    if name.is_empty() {
        return Err(ApiError::invalid_param("name", "`name` must not be empty."));
    }
    if name.chars().count() > 256 {
        return Err(ApiError::invalid_param(
            "name",
            "`name` must be at most 256 characters.",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid_param(
            "name",
            "`name` must not contain control characters.",
        ));
    }
    Ok(name.to_owned())
}

pub(crate) fn validate_expires_in(seconds: Option<i64>) -> Result<Option<i64>, ApiError> {
    match seconds {
        Some(s) if !(1..=MAX_EXPIRES_IN_SECONDS).contains(&s) => Err(ApiError::invalid_param(
            "expires_in_seconds",
            format!(
                "`expires_in_seconds` must be between 1 and {MAX_EXPIRES_IN_SECONDS}; leave it out for a key that does not expire."
            ),
        )),
        other => Ok(other),
    }
}

/// A validated list query.
struct ListParams {
    after: Option<String>,
    order: Order,
    limit: i64,
    filter: ListFilter,
}

fn validate_list_query(query: ListQuery) -> Result<ListParams, ApiError> {
    let present = |value: Option<String>| value.filter(|v| !v.is_empty());
    let limit = match present(query.limit) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "limit",
                    format!("`limit` must be an integer from 1 to {MAX_LIMIT}, got {raw:?}."),
                )
            })?,
    };
    let order = match present(query.order).as_deref() {
        None | Some("asc") => ListOrder::Asc,
        Some("desc") => ListOrder::Desc,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "order",
                format!("`order` must be `asc` or `desc`, got {other:?}."),
            ));
        }
    };
    let after = present(query.after);
    if let Some(id) = &after
        && !plausible_key_id(id)
    {
        return Err(ApiError::invalid_param(
            "after",
            format!("No admin API key with id {id:?} exists, so there is no page after it."),
        ));
    }
    let status = match present(query.status).as_deref() {
        None => None,
        Some("active") => Some(KeyStatus::Active),
        Some("expired") => Some(KeyStatus::Expired),
        Some("disabled") => Some(KeyStatus::Disabled),
        Some(other) => {
            return Err(ApiError::invalid_param(
                "status",
                format!("`status` must be `active`, `expired` or `disabled`, got {other:?}."),
            ));
        }
    };
    let search = present(query.search);
    if let Some(text) = &search
        && (text.chars().count() > 256 || text.chars().any(char::is_control))
    {
        return Err(ApiError::invalid_param(
            "search",
            "`search` must be at most 256 characters, without control characters.",
        ));
    }
    Ok(ListParams {
        after,
        order: order.into(),
        limit,
        filter: ListFilter {
            search,
            status,
            now: 0,
        },
    })
}

//! `/organization/admin_api_keys`: the routes, one file per operation, and what they share
//! (validation, issuing a key, the lock-out guard).

pub mod create;
pub mod delete;
pub mod json;
pub mod list;
pub mod retrieve;
pub mod rotate;
pub mod update;

use actix_web::web;

use serde_json::json;

use crate::audit::{self, Actor};
use crate::auth::{self, AdminKey, ApiKeySecret};
use crate::db::write_transaction;
use crate::error::ApiError;
use crate::models::admin_api_key::{self, NewAdminApiKey};
use crate::routes::method_not_allowed;
use crate::scopes::{Scope, Scopes};

/// The longest lifetime a key can be given: 365 days.
pub const MAX_EXPIRES_IN_SECONDS: i64 = 31_536_000;

/// Registers this resource's routes (relative to the authenticated `/organization` scope);
/// other methods on its paths answer 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin_api_keys")
            .route(web::get().to(list::list))
            .route(web::post().to(create::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}")
            .route(web::get().to(retrieve::retrieve))
            .route(web::post().to(update::update))
            .route(web::delete().to(delete::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}/rotate")
            .route(web::post().to(rotate::rotate))
            .default_service(web::to(method_not_allowed)),
    );
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

//! `POST /organization/admin_api_keys/{key_id}`: rename, enable/disable, change scopes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::json::{AdminApiKey, UpdateAdminApiKeyRequest};

use super::{keep_an_active_writer, no_such_key, plausible_key_id, validate_name, validate_scopes};
use crate::audit::{self, Actor};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::Json;
use crate::models::admin_api_key::{self, KeyChanges};
use crate::scopes::{Scope, Scopes};
use crate::startup::AppState;

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

//! `POST /organization/admin_api_keys/{key_id}`: rename, enable/disable, change scopes and
//! permissions, bring the expiry forward.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKey, UpdateAdminApiKeyRequest};
use super::{requested_permissions, requested_scopes};
use crate::auth::AdminKey;
use crate::domain::{Expiry, KeyName, LifetimePolicy, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery};
use crate::services::{self, keys};
use crate::state::AppState;

/// Update an admin API key
///
/// Changes any of `name`, `enabled`, `scopes`, `permissions` and `expires_at`; fields left
/// out keep their value. `expires_at` (an extension) only ever brings the key's end forward:
/// after now and no later than its current `expires_at` (a key that never expired may get
/// any end within the organisation's maximum lifetime); the key stops at that second on every
/// replica. Disabling a key makes it answer 401 at once; re-enabling restores it with the same
/// secret. A key can only grant scopes it holds and permissions its own cover. A change that
/// would leave no enabled owner with an enabled key holding `admin_api_keys.write` and
/// `users.write`, valid for at least 5 more minutes, is refused with 409.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-update",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to change.")),
    request_body = UpdateAdminApiKeyRequest,
    responses(
        (status = 200, description = "The key after the change.", body = AdminApiKey),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The change would lock the organisation out.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn update(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let presets = state.cache.mcp_presets().clone();
    let (key_id, now, by) = (
        key_id.into_inner(),
        state.clock.now(),
        caller.key_id.clone(),
    );
    let update = parse_update(body.parse().await?, &state.key_lifetime, &presets, now)?;
    let changed = services::write(&state, move |conn| {
        keys::update(conn, &caller, &key_id, update, now)
    })
    .await?;
    tracing::info!(key_id = %changed.0.id, by = %by, "admin key updated");
    Ok(HttpResponse::Ok().json(AdminApiKey::shown(changed, &state.usage, &presets)))
}

/// The changes a body asks for: at least one.
fn parse_update(
    body: UpdateAdminApiKeyRequest,
    policy: &LifetimePolicy,
    presets: &crate::domain::McpPresets,
    now: i64,
) -> Result<keys::KeyUpdate, ApiError> {
    let update = keys::KeyUpdate {
        mcp: crate::routes::mcp::requested(body.mcp, presets)?,
        name: body
            .name
            .map(|name| KeyName::parse("name", &name))
            .transpose()?,
        enabled: body.enabled,
        scopes: requested_scopes(body.scopes)?,
        permissions: requested_permissions(body.permissions)?,
        expires_at: match body.expires_at {
            None => None,
            Some(at) => policy.expires_at(Expiry::At(at), now)?,
        },
    };
    if update.name.is_none()
        && update.enabled.is_none()
        && update.scopes.is_none()
        && update.permissions.is_none()
        && update.expires_at.is_none()
        && update.mcp.change.is_none()
    {
        return Err(ApiError::invalid_request(
            "Send at least one of `name`, `enabled`, `scopes`, `permissions`, `expires_at` \
             and `mcp`.",
        ));
    }
    Ok(update)
}

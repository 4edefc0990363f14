//! `POST /organization/admin_api_keys/{key_id}/rotate`: replace a key's secret with overlap.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKeyCreateResponse, AdminApiKeyRotateResponse, RotateAdminApiKeyRequest};
use crate::auth::AdminKey;
use crate::domain::{KeyLifetime, Overlap, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery};
use crate::services::{self, keys};
use crate::state::AppState;

/// Rotate an admin API key
///
/// Issues a new key with the same name, owner and scopes and returns it with its secret
/// `value`, once. Without `expires_in_seconds` the new key gets the lifetime the old one was
/// given, counted from now. A key is rotated once: rotating it again answers 409 naming the
/// key that replaced it. The old key keeps working for `previous_key_expires_in_seconds` (default 0:
/// it stops now); its `expires_at` shows the end of the overlap and its `last_used_at` shows
/// whether callers still use it. The caller must hold every scope of the rotated key.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys/{key_id}/rotate",
    operation_id = "admin-api-keys-rotate",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to replace.")),
    request_body(content = Option<RotateAdminApiKeyRequest>, description = "Optional: an empty body rotates with the defaults."),
    responses(
        (status = 200, description = "The new key, with its secret value.", body = AdminApiKeyRotateResponse),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The key was already rotated (`code` `already_rotated`, the message names its successor), or the rotation would lock the organisation out (`last_admin_key`).", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn rotate(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let body: RotateAdminApiKeyRequest = body.parse_or_default().await?;
    let lifetime = KeyLifetime::parse_present(body.expires_in_seconds)?;
    let overlap = Overlap::parse(body.previous_key_expires_in_seconds)?;
    let (key_id, now, by) = (
        key_id.into_inner(),
        state.clock.now(),
        caller.key_id.clone(),
    );
    let old_id = key_id.clone();
    let issued = services::write(&state, move |conn| {
        keys::rotate(conn, &caller, &old_id, lifetime, overlap, now)
    })
    .await?;
    tracing::info!(key_id = %issued.key.0.id, rotated_from = %key_id, by = %by, "admin key rotated");
    Ok(HttpResponse::Ok().json(AdminApiKeyRotateResponse {
        created: AdminApiKeyCreateResponse::issued(issued, &state.usage),
        rotated_from: key_id,
    }))
}

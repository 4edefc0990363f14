//! `POST /organization/admin_api_keys/{key_id}/rotate`: replace a key's secret with overlap.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKeyCreateResponse, AdminApiKeyRotateResponse, RotateAdminApiKeyRequest};
use crate::auth::AdminKey;
use crate::domain::{KeyLifetime, Overlap, Scope};
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::OptionalJson;
use crate::services::{self, keys};
use crate::state::AppState;

/// Rotate an admin API key
///
/// Issues a new key with the same name, owner and scopes and returns it with its secret
/// `value`, once. The old key keeps working for `previous_key_expires_in_seconds` (default 0:
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
        (status = 400, description = "A field is invalid; `param` names it.", body = ErrorResponse),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The rotation would lock the organisation out.", body = ErrorResponse),
        (status = 413, description = "The body is larger than the limit.", body = ErrorResponse),
        (status = 415, description = "The body is not `application/json`.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn rotate(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    OptionalJson(body): OptionalJson<RotateAdminApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let lifetime = KeyLifetime::parse(body.expires_in_seconds)?;
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

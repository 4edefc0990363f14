//! `POST /organization/admin_api_keys/{key_id}/rotate`: replace a key's secret with overlap.

use actix_web::{HttpResponse, web};

use super::json::{
    AdminApiKey, AdminApiKeyCreateResponse, AdminApiKeyRotateResponse, RotateAdminApiKeyRequest,
};
use serde_json::json;

use super::{
    NewKey, issue_key, keep_an_active_writer, no_such_key, plausible_key_id, record_created,
    validate_expires_in,
};
use crate::audit::{self, Actor};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::OptionalJson;
use crate::models::admin_api_key;
use crate::scopes::{Scope, Scopes};
use crate::startup::AppState;

/// The longest overlap during which the old key keeps working: 7 days.
pub const MAX_OVERLAP_SECONDS: i64 = 604_800;

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
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks `admin_api_keys.write` or a scope of the rotated key.", body = ErrorResponse),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The rotation would lock the organisation out.", body = ErrorResponse),
        (status = 413, description = "The body is larger than the limit.", body = ErrorResponse),
        (status = 415, description = "The body is not `application/json`.", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
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
    let key_id = key_id.into_inner();
    let lifetime = validate_expires_in(body.expires_in_seconds)?;
    let overlap = body.previous_key_expires_in_seconds.unwrap_or(0);
    if !(0..=MAX_OVERLAP_SECONDS).contains(&overlap) {
        return Err(ApiError::invalid_param(
            "previous_key_expires_in_seconds",
            format!(
                "`previous_key_expires_in_seconds` must be between 0 and {MAX_OVERLAP_SECONDS}."
            ),
        ));
    }
    if !plausible_key_id(&key_id) {
        return Err(no_such_key(&key_id));
    }
    let now = state.clock.now();
    let old_id = key_id.clone();
    let caller_id = caller.key_id.clone();
    let cache = state.auth_cache.clone();
    let (secret, (row, owner)) = run_blocking(&state.pool, move |conn| {
        let issued = keep_an_active_writer(conn, now, "rotate", |conn| {
            let (old, _) =
                admin_api_key::find(conn, &old_id)?.ok_or_else(|| no_such_key(&old_id))?;
            caller.may_grant(Scopes::from_db(&old.scopes))?;
            let actor = Actor::of_key(conn, &caller)?;
            let issued = issue_key(
                conn,
                &NewKey {
                    name: &old.name,
                    owner_id: &old.owner_id,
                    scopes: &old.scopes,
                    created_at: now,
                    expires_at: lifetime.map(|seconds| now + seconds),
                },
            )?;
            record_created(conn, now, &actor, &issued.1.0)?;
            let old_expires_at = old
                .expires_at
                .map_or(now + overlap, |at| at.min(now + overlap));
            let mut requested = serde_json::Map::new();
            if admin_api_key::expire_by(conn, &old_id, old_expires_at)? {
                requested.insert("expires_at".into(), json!(old_expires_at));
            }
            requested.insert("rotated_to".into(), json!(issued.1.0.id));
            let details = json!({ "id": old_id, "changes_requested": requested });
            audit::record(conn, now, &actor, audit::API_KEY_UPDATED, &old_id, &details)?;
            Ok(issued)
        })?;
        // Here, not after the await: the commit stands even if the client goes away.
        cache.forget_unknown();
        cache.forget_key(&old_id);
        Ok(issued)
    })
    .await?;
    tracing::info!(key_id = %row.id, rotated_from = %key_id, by = %caller_id, "admin key rotated");
    Ok(HttpResponse::Ok().json(AdminApiKeyRotateResponse {
        created: AdminApiKeyCreateResponse {
            key: AdminApiKey::from_row(row, owner, &state.usage),
            value: secret.expose().to_owned(),
        },
        rotated_from: key_id,
    }))
}

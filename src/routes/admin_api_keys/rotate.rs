//! `POST /organization/admin_api_keys/{key_id}/rotate`: replace a key's secret with overlap.

use actix_web::{HttpRequest, HttpResponse, web};

use super::create::{IdempotencyKeyHeader, made, respond};
use super::json::{AdminApiKeyCreateResponse, AdminApiKeyRotateResponse, RotateAdminApiKeyRequest};
use crate::auth::AdminKey;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::{KeyLifetime, Overlap, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery};
use crate::services::{self, idempotency, keys};
use crate::state::AppState;

/// Rotate an admin API key
///
/// Issues a new key with the same name, owner and scopes and returns it with its secret
/// `value`, once. Without `expires_in_seconds` the new key gets the lifetime the old one was
/// given, counted from now. A key is rotated once: rotating it again answers 409 naming the
/// key that replaced it. The old key keeps working for `previous_key_expires_in_seconds` (default 0:
/// it stops now); its `expires_at` shows the end of the overlap and its `last_used_at` shows
/// whether callers still use it. The caller must hold every scope of the rotated key. Send an
/// `Idempotency-Key` to make retrying safe, as on create.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys/{key_id}/rotate",
    operation_id = "admin-api-keys-rotate",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to replace."), IdempotencyKeyHeader),
    request_body(content = Option<RotateAdminApiKeyRequest>, description = "Optional: an empty body rotates with the defaults."),
    responses(
        (status = 200, description = "The new key, with its secret value; or, for a retry under the same `Idempotency-Key`, the first answer again (with `Idempotent-Replayed: true`).", body = AdminApiKeyRotateResponse,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is the answer to an earlier request with the same `Idempotency-Key`, sent again."))),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        (status = 409, description = "The key was already rotated (`code` `already_rotated`, the message names its successor), or the rotation would lock the organisation out (`last_admin_key`), or the `Idempotency-Key` was used for another request (`idempotency_key_reused`), is in use by a request still running (`idempotency_key_in_use`), or already made a key whose answer this server does not keep (`idempotency_key_already_used`, the message names the key).", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn rotate(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    req: HttpRequest,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let idempotency_key = IdempotencyKey::from_headers(req.headers())?;
    let body: RotateAdminApiKeyRequest = body.parse_or_default().await?;
    let once = idempotency_key.map(|key| {
        let route = format!("POST /organization/admin_api_keys/{key_id}/rotate");
        idempotency::Request::new(&key, &caller.key_id, &route, &fingerprint(&body))
    });
    let lifetime = KeyLifetime::parse_present(body.expires_in_seconds)?;
    let overlap = Overlap::parse(body.previous_key_expires_in_seconds)?;
    let (key_id, now, by) = (
        key_id.into_inner(),
        state.clock.now(),
        caller.key_id.clone(),
    );
    let old_id = key_id.clone();
    let (usage, sealer) = (state.usage.clone(), state.idempotency_sealer.clone());
    let rotation = keys::Rotation {
        lifetime,
        overlap,
        policy: state.key_lifetime,
    };
    let presets = state.cache.mcp_presets().clone();
    let answer = services::write(&state, move |conn| {
        idempotency::once(conn, once.as_ref(), sealer.as_ref(), now, |conn| {
            keys::rotate(conn, &caller, &old_id, rotation, &presets, now)?
                .try_map(|issued| answer(issued, &old_id, &usage, &presets))
        })
    })
    .await?;
    tracing::info!(key_id = %answer.key_id, rotated_from = %key_id, by = %by, replayed = answer.replayed, "admin key rotated");
    Ok(respond(answer))
}

/// The fields of a rotation that an `Idempotency-Key` binds. `expires_in_seconds` absent and
/// `null` ask different things; both are kept apart.
fn fingerprint(body: &RotateAdminApiKeyRequest) -> serde_json::Value {
    let mut fields = serde_json::Map::new();
    if let Some(expires_in) = body.expires_in_seconds {
        fields.insert("expires_in_seconds".into(), expires_in.into());
    }
    if let Some(overlap) = body.previous_key_expires_in_seconds {
        fields.insert("previous_key_expires_in_seconds".into(), overlap.into());
    }
    fields.into()
}

/// A rotation's answer, as sent (and kept for replays).
fn answer(
    issued: crate::services::keys::Issued,
    old_id: &str,
    usage: &crate::cache::usage::UsageTracker,
    presets: &crate::domain::McpPresets,
) -> Result<idempotency::Made, ApiError> {
    let new_id = issued.key.0.id.clone();
    let answer = AdminApiKeyRotateResponse {
        created: AdminApiKeyCreateResponse::issued(issued, usage, presets),
        rotated_from: old_id.to_owned(),
    };
    made(new_id, &answer)
}

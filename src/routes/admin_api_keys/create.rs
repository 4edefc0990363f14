//! `POST /organization/admin_api_keys`: a new key, whose secret only this response carries.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};

use super::json::{AdminApiKeyCreateResponse, CreateAdminApiKeyRequest};
use super::{requested_permissions, requested_scopes};
use crate::auth::AdminKey;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::{Expiry, KeyName, LifetimePolicy, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery};
use crate::services::{self, idempotency, keys};
use crate::state::AppState;

/// The `Idempotency-Key` header of create and rotate, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader {
    /// Makes the request safe to retry (Stripe's convention): 1 to 255 visible ASCII
    /// characters, new for each operation (a UUID, say), sent again only to retry it. When the
    /// same key sends the same method, path and body with it again within 24 hours, no second
    /// key is made: the answer is the first one again, with `Idempotent-Replayed: true`, if the
    /// server has an `IDEMPOTENCY_KEY_SECRET` to keep it sealed; otherwise a 409
    /// (`idempotency_key_already_used`) naming the key made, so it can be deleted. The same
    /// header with another path or body is a 409 (`idempotency_key_reused`), and while the
    /// first request is still running, a 409 (`idempotency_key_in_use`). A malformed value is
    /// a 400. Only requests that made a key are remembered. Without the header every request
    /// makes a new key, including the retries the OpenAI SDKs send after a timeout or a 5xx.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        max_length = 255,
        min_length = 1,
        pattern = "^[!-~]{1,255}$"
    )]
    idempotency_key: Option<String>,
}

/// Create an admin API key
///
/// Makes a new key owned by the owner of the calling key, or by the user named in `owner_id`
/// (which needs `users.write`). It expires after `expires_in_seconds` or at `expires_at` (an
/// extension; one of them, not both), within the organisation's maximum key lifetime, or
/// else when the organisation's default says (by default, never). The response is the only place the secret `value` ever
/// appears: the service stores just its SHA-256.
///
/// Send an `Idempotency-Key` to make retrying safe: see the header's description.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-create",
    tag = "Admin API keys",
    params(IdempotencyKeyHeader),
    request_body = CreateAdminApiKeyRequest,
    responses(
        (status = 200, description = "The new key, with its secret value; or, for a retry under the same `Idempotency-Key`, the first answer again (with `Idempotent-Replayed: true`).", body = AdminApiKeyCreateResponse,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is the answer to an earlier request with the same `Idempotency-Key`, sent again."))),
        (status = 404, description = "`owner_id` names no user.", body = ErrorResponse),
        (status = 409, description = "The user named in `owner_id` is disabled (`user_disabled`), or the `Idempotency-Key` was used for another request (`idempotency_key_reused`), is in use by a request still running (`idempotency_key_in_use`), or already made a key whose answer this server does not keep (`idempotency_key_already_used`, the message names the key).", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let idempotency_key = IdempotencyKey::from_headers(req.headers())?;
    let body: CreateAdminApiKeyRequest = body.parse().await?;
    let once = idempotency_key.map(|key| {
        idempotency::Request::new(
            &key,
            &caller.key_id,
            "POST /organization/admin_api_keys",
            &fingerprint(&body),
        )
    });
    let presets = state.cache.mcp_presets().clone();
    let now = state.clock.now();
    let new = new_key(body, &state.key_lifetime, &presets, now)?;
    let by = caller.key_id.clone();
    let (usage, sealer) = (state.usage.clone(), state.idempotency_sealer.clone());
    let answer = services::write(&state, move |conn| {
        idempotency::once(conn, once.as_ref(), sealer.as_ref(), now, |conn| {
            keys::create(conn, &caller, new, now)?.try_map(|issued| {
                let key_id = issued.key.0.id.clone();
                made(
                    key_id,
                    &AdminApiKeyCreateResponse::issued(issued, &usage, &presets),
                )
            })
        })
    })
    .await?;
    tracing::info!(key_id = %answer.key_id, by = %by, replayed = answer.replayed, "admin key created");
    Ok(respond(answer))
}

/// A new key's answer, as sent (and kept for replays).
pub(super) fn made<T: serde::Serialize>(
    key_id: String,
    answer: &T,
) -> Result<idempotency::Made, ApiError> {
    Ok(idempotency::Made {
        key_id,
        body: serde_json::to_vec(answer).map_err(|e| ApiError::Internal(Box::new(e)))?,
    })
}

/// The 200 carrying `answer`; a replay says so in `Idempotent-Replayed`.
pub(super) fn respond(answer: idempotency::Answer) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if answer.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.content_type(ContentType::json()).body(answer.body)
}

/// The fields of a create that an `Idempotency-Key` binds: a retry must send the same.
fn fingerprint(body: &CreateAdminApiKeyRequest) -> serde_json::Value {
    let mut fields = serde_json::json!({
        "name": body.name,
        "expires_in_seconds": body.expires_in_seconds,
        "scopes": body.scopes,
        "owner_id": body.owner_id,
        "permissions": body.permissions,
    });
    // Only when sent, so a request made before `expires_at` and `mcp` existed keeps its
    // fingerprint.
    if let Some(at) = body.expires_at {
        fields["expires_at"] = at.into();
    }
    if let Some(mcp) = &body.mcp {
        fields["mcp"] = serde_json::json!(mcp);
    }
    fields
}

/// What a create body asks for, validated.
fn new_key(
    body: CreateAdminApiKeyRequest,
    policy: &LifetimePolicy,
    presets: &crate::domain::McpPresets,
    now: i64,
) -> Result<keys::NewKey, ApiError> {
    let asked = Expiry::parse(body.expires_in_seconds, body.expires_at)?;
    Ok(keys::NewKey {
        mcp: crate::routes::mcp::requested(body.mcp, presets)?,
        name: KeyName::required("name", body.name.as_deref())?,
        expires_at: policy.expires_at(asked, now)?,
        scopes: requested_scopes(body.scopes)?,
        permissions: requested_permissions(body.permissions)?,
        owner_id: match body.owner_id {
            Some(id) if id.trim().is_empty() => {
                return Err(ApiError::invalid_param(
                    "owner_id",
                    "`owner_id` must be a user id; leave it out for a key of your own.",
                ));
            }
            owner_id => owner_id,
        },
    })
}

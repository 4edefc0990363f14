//! `POST /organization/admin_api_keys`: a new key, whose secret only this response carries.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKey, AdminApiKeyCreateResponse, CreateAdminApiKeyRequest};

use super::{
    NewKey, issue_key, record_created, validate_expires_in, validate_name, validate_scopes,
};
use crate::audit::Actor;
use crate::auth::AdminKey;
use crate::db::{run_blocking, write_transaction};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::Json;
use crate::scopes::Scope;
use crate::startup::AppState;

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

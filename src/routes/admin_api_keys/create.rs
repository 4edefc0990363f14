//! `POST /organization/admin_api_keys`: a new key, whose secret only this response carries.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKeyCreateResponse, CreateAdminApiKeyRequest};
use super::requested_scopes;
use crate::auth::AdminKey;
use crate::domain::{KeyLifetime, KeyName, Scope};
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::Json;
use crate::services::{self, keys};
use crate::state::AppState;

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
        (status = 413, description = "The body is larger than the limit.", body = ErrorResponse),
        (status = 415, description = "The body is not `application/json`.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    Json(body): Json<CreateAdminApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let new = keys::NewKey {
        name: KeyName::required("name", body.name.as_deref())?,
        lifetime: KeyLifetime::parse(body.expires_in_seconds)?,
        scopes: requested_scopes(body.scopes)?,
    };
    let now = state.clock.now();
    let by = caller.key_id.clone();
    let issued = services::write(&state, move |conn| keys::create(conn, &caller, new, now)).await?;
    tracing::info!(key_id = %issued.key.0.id, by = %by, "admin key created");
    Ok(HttpResponse::Ok().json(AdminApiKeyCreateResponse::issued(issued, &state.usage)))
}

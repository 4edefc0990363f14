//! `POST /organization/admin_api_keys`: a new key, whose secret only this response carries.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKeyCreateResponse, CreateAdminApiKeyRequest};
use super::{requested_permissions, requested_scopes};
use crate::auth::AdminKey;
use crate::domain::{KeyLifetime, KeyName, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery};
use crate::services::{self, keys};
use crate::state::AppState;

/// Create an admin API key
///
/// Makes a new key owned by the owner of the calling key, or by the user named in `owner_id`
/// (which needs `users.write`). The response is the only place the secret `value` ever
/// appears: the service stores just its SHA-256.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-create",
    tag = "Admin API keys",
    request_body = CreateAdminApiKeyRequest,
    responses(
        (status = 200, description = "The new key, with its secret value.", body = AdminApiKeyCreateResponse),
        (status = 404, description = "`owner_id` names no user.", body = ErrorResponse),
        (status = 409, description = "The user named in `owner_id` is disabled.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn create(
    caller: AdminKey,
    state: web::Data<AppState>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let body: CreateAdminApiKeyRequest = body.parse().await?;
    let new = keys::NewKey {
        name: KeyName::required("name", body.name.as_deref())?,
        lifetime: KeyLifetime::parse(body.expires_in_seconds)?,
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
    };
    let now = state.clock.now();
    let by = caller.key_id.clone();
    let issued = services::write(&state, move |conn| keys::create(conn, &caller, new, now)).await?;
    tracing::info!(key_id = %issued.key.0.id, by = %by, "admin key created");
    Ok(HttpResponse::Ok().json(AdminApiKeyCreateResponse::issued(issued, &state.usage)))
}

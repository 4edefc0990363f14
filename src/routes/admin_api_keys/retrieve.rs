//! `GET /organization/admin_api_keys/{key_id}`: one key, from the cache when it can.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use super::json::AdminApiKey;

use super::{no_such_key, plausible_key_id};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::error::{ApiError, ErrorResponse};
use crate::models::admin_api_key::{self};
use crate::scopes::Scope;
use crate::startup::AppState;

/// Retrieve an admin API key
///
/// Returns one key as `create` returned it, without the secret value.
#[utoipa::path(
    get,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-get",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key.")),
    responses(
        (status = 200, description = "The key.", body = AdminApiKey),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 404, description = "No key has this id (or it was deleted).", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let key_id = key_id.into_inner();
    if !plausible_key_id(&key_id) {
        return Err(no_such_key(&key_id));
    }
    let now = state.clock.now();
    let view = match state.auth_cache.view(&key_id, now) {
        Ok(view) => view,
        Err(ticket) => {
            let id = key_id.clone();
            let found =
                run_blocking(&state.pool, move |conn| Ok(admin_api_key::find(conn, &id)?)).await?;
            let rendered = match found {
                Some((row, owner)) => {
                    let stored = AdminApiKey::stored(row.clone(), owner.clone());
                    let body =
                        serde_json::to_vec(&stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
                    Some(((row, owner), body.into()))
                }
                None => None,
            };
            let view = state.auth_cache.fill_view(ticket, rendered, now);
            view.ok_or_else(|| no_such_key(&key_id))?
        }
    };
    let (row, owner) = &view.key;
    if state.usage.overlay(&row.id, row.last_used_at) == row.last_used_at {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(view.body.clone()));
    }
    let shown = AdminApiKey::from_row(row.clone(), owner.clone(), &state.usage);
    Ok(HttpResponse::Ok().json(shown))
}

//! `GET /organization/admin_api_keys/{key_id}`: one key, from the view cache when it can.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use super::json::{AdminApiKey, render_stored, view_body};
use crate::auth::AdminKey;
use crate::cache::CachedView;
use crate::db::run_blocking;
use crate::domain::Scope;
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::NoQuery;
use crate::ids;
use crate::models::admin_api_key;
use crate::services::keys::no_such_key;
use crate::state::AppState;

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
        (status = 404, description = "No key has this id (or it was deleted).", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn retrieve(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let key_id = key_id.into_inner();
    if !ids::plausible(&key_id) {
        return Err(no_such_key(&key_id));
    }
    let view = view_of(&state, &key_id)
        .await?
        .ok_or_else(|| no_such_key(&key_id))?;
    let body = view_body(&view, &state.usage, state.cache.mcp_presets())?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// The key `key_id` as retrieve shows it: from the view cache, or read and cached.
pub async fn view_of(state: &AppState, key_id: &str) -> Result<Option<Arc<CachedView>>, ApiError> {
    match state.cache.view(key_id, state.clock.now()) {
        Ok(view) => Ok(Some(view)),
        Err(ticket) => {
            let found = read_view(state, key_id.to_owned()).await?;
            Ok(state.cache.fill_view(ticket, found, state.clock.now()))
        }
    }
}

/// The key and its rendered body as stored, for the view cache.
async fn read_view(
    state: &AppState,
    key_id: String,
) -> Result<Option<(admin_api_key::KeyWithOwner, actix_web::web::Bytes)>, ApiError> {
    let found = run_blocking(&state.pool, move |conn| {
        Ok(admin_api_key::find(conn, &key_id)?)
    })
    .await?;
    found
        .map(|key| render_stored(key, state.cache.mcp_presets()))
        .transpose()
}

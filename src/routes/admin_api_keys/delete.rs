//! `DELETE /organization/admin_api_keys/{key_id}`.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKeyDeleted, DeletedObject};
use crate::auth::AdminKey;
use crate::domain::Scope;
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::NoQuery;
use crate::services::{self, keys};
use crate::state::AppState;

/// Delete an admin API key
///
/// Removes the key for good; it stops authenticating immediately. Deleting it again, or any
/// unknown id, answers 404.
#[utoipa::path(
    delete,
    path = "/organization/admin_api_keys/{key_id}",
    operation_id = "admin-api-keys-delete",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key to delete.")),
    responses(
        (status = 200, description = "The key was deleted.", body = AdminApiKeyDeleted),
        (status = 404, description = "No key has this id (or it was already deleted).", body = ErrorResponse),
        (status = 409, description = "Deleting it would leave no enabled, unexpired key able to manage keys.", body = ErrorResponse),
        (status = 400, description = "The request has a query parameter; this operation takes none.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    _: NoQuery,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let key_id = key_id.into_inner();
    let now = state.clock.now();
    let (id, by) = (key_id.clone(), caller.key_id.clone());
    services::write(&state, move |conn| keys::delete(conn, &caller, &id, now)).await?;
    tracing::info!(key_id = %key_id, by = %by, "admin key deleted");
    Ok(HttpResponse::Ok().json(AdminApiKeyDeleted {
        id: key_id,
        object: DeletedObject::Deleted,
        deleted: true,
    }))
}

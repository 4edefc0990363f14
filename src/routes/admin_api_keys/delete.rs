//! `DELETE /organization/admin_api_keys/{key_id}`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::json::{AdminApiKeyDeleted, DeletedObject};

use super::{keep_an_active_writer, no_such_key, plausible_key_id};
use crate::audit::{self, Actor};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::error::{ApiError, ErrorResponse};
use crate::models::admin_api_key::{self};
use crate::scopes::Scope;
use crate::startup::AppState;

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
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 404, description = "No key has this id (or it was already deleted).", body = ErrorResponse),
        (status = 409, description = "Deleting it would leave no enabled, unexpired key able to manage keys.", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn delete(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let key_id = key_id.into_inner();
    let now = state.clock.now();
    let deleted = plausible_key_id(&key_id) && {
        let (id, caller) = (key_id.clone(), caller.clone());
        let cache = state.auth_cache.clone();
        run_blocking(&state.pool, move |conn| {
            let deleted = keep_an_active_writer(conn, now, "delete", |conn| {
                let deleted = admin_api_key::delete(conn, &id)?;
                if deleted {
                    let actor = Actor::of_key(conn, &caller)?;
                    audit::record(
                        conn,
                        now,
                        &actor,
                        audit::API_KEY_DELETED,
                        &id,
                        &json!({ "id": id }),
                    )?;
                }
                Ok(deleted)
            })?;
            cache.forget_key(&id);
            Ok(deleted)
        })
        .await?
    };
    if !deleted {
        return Err(no_such_key(&key_id));
    }
    tracing::info!(key_id = %key_id, by = %caller.key_id, "admin key deleted");
    Ok(HttpResponse::Ok().json(AdminApiKeyDeleted {
        id: key_id,
        object: DeletedObject::Deleted,
        deleted: true,
    }))
}

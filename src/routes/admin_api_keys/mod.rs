//! `/organization/admin_api_keys`: the routes, one file per operation, and their wire types
//! (`json`). The rules live in `services::keys`.

pub mod create;
pub mod delete;
pub mod json;
pub mod list;
pub mod retrieve;
pub mod rotate;
pub mod update;

use actix_web::web;

use crate::domain::{Invalid, Permissions, Scope, Scopes};
use crate::routes::method_not_allowed;

/// Registers this resource's routes (relative to the authenticated `/organization` scope);
/// other methods on its paths answer 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin_api_keys")
            .name("admin_api_keys")
            .route(web::get().to(list::list))
            .route(web::post().to(create::create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}")
            .name("admin_api_key")
            .route(web::get().to(retrieve::retrieve))
            .route(web::post().to(update::update))
            .route(web::delete().to(delete::delete))
            .default_service(method_not_allowed("GET, POST, DELETE")),
    )
    .service(
        web::resource("/admin_api_keys/{key_id}/rotate")
            .name("admin_api_key_rotate")
            .route(web::post().to(rotate::rotate))
            .default_service(method_not_allowed("POST")),
    );
}

/// The `scopes` of a request body: at least one.
fn requested_scopes(requested: Option<Vec<Scope>>) -> Result<Option<Scopes>, Invalid> {
    requested
        .map(|scopes| {
            let scopes: Scopes = scopes.into_iter().collect();
            if scopes.is_empty() {
                return Err(Invalid::new(
                    "scopes",
                    "`scopes` must name at least one scope.",
                ));
            }
            Ok(scopes)
        })
        .transpose()
}

/// The `permissions` of a request body, checked.
fn requested_permissions(requested: Option<Vec<String>>) -> Result<Option<Permissions>, Invalid> {
    requested
        .map(|raw| Permissions::parse("permissions", &raw))
        .transpose()
}

//! The OpenAPI document, generated from the handlers and wire types.
//!
//! As upstream, paths are documented without the `/v1` prefix under a `/v1` server entry.
//! `info.version` is pinned so a crate version bump does not churn the committed spec.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorResponse};
use crate::routes::admin_api_keys::{self, json};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "admin-api-keys",
        version = "1.0.0",
        description = "A self-hosted authority for administrative API keys. The wire format of \
            `/organization/admin_api_keys` follows OpenAI's Admin API Keys, so OpenAI SDKs and \
            generated clients work by changing only the base URL. Every route is served under \
            `/v1` (the server entry below) and also without the prefix. Every error uses the \
            envelope `{\"error\":{\"message\",\"type\",\"param\",\"code\"}}`.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/v1", description = "This service; the same routes also answer without `/v1`.")),
    paths(
        admin_api_keys::list::list,
        admin_api_keys::create::create,
        admin_api_keys::retrieve::retrieve,
        admin_api_keys::update::update,
        admin_api_keys::rotate::rotate,
        admin_api_keys::delete::delete,
        crate::routes::audit_logs::list,
    ),
    components(schemas(
        json::AdminApiKey,
        json::AdminApiKeyCreateResponse,
        json::ApiKeyList,
        json::AdminApiKeyDeleted,
        json::CreateAdminApiKeyRequest,
        json::UpdateAdminApiKeyRequest,
        json::RotateAdminApiKeyRequest,
        json::AdminApiKeyRotateResponse,
        crate::scopes::Scope,
        json::Owner,
        crate::routes::audit_logs::AuditLog,
        crate::routes::audit_logs::AuditLogList,
        ErrorResponse,
        ErrorBody,
    )),
    modifiers(&SecurityAddon),
    tags(
        (name = "Admin API keys", description = "Keys that authenticate calls to this API."),
        (name = "Audit logs", description = "The append-only record of changes to keys.")
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme the operations refer to.
struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "AdminApiKeyAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin key: `Authorization: Bearer sk-admin-...`."))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, exactly as committed in `openapi/openapi.json`.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// `GET /openapi.json`.
pub async fn serve() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(document).as_str())
}

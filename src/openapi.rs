//! The OpenAPI document, generated from the handlers and wire types.
//!
//! As upstream, paths are documented without the `/v1` prefix under a `/v1` server entry.
//! `info.version` is pinned so a crate version bump does not churn the committed spec.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{RefOr, path::Parameter};
use utoipa::{Modify, OpenApi};

use crate::domain::{MAX_EMAIL_CHARS, MAX_EXPIRES_IN_SECONDS, MAX_NAME_CHARS, MAX_OVERLAP_SECONDS};
use crate::error::{ErrorBody, ErrorResponse, responses};
use crate::routes::admin_api_keys::{self, json};
use crate::routes::list::{List, MAX_LIMIT};

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
        crate::routes::audit_logs::list_entries,
        crate::routes::introspect::introspect,
        crate::routes::forward_auth::forward_auth,
        crate::routes::users::list,
        crate::routes::users::retrieve,
        crate::routes::users::modify,
        crate::routes::users::delete,
        crate::routes::invites::list,
        crate::routes::invites::create,
        crate::routes::invites::retrieve,
        crate::routes::invites::delete,
        crate::routes::invites::accept,
        crate::routes::projects::list,
        crate::routes::projects::create,
        crate::routes::projects::retrieve,
        crate::routes::projects::modify,
        crate::routes::projects::archive,
        crate::routes::projects::users::list,
        crate::routes::projects::users::create,
        crate::routes::projects::users::retrieve,
        crate::routes::projects::users::modify,
        crate::routes::projects::users::delete,
        crate::routes::projects::rate_limits::list,
        crate::routes::projects::rate_limits::update,
        crate::routes::service_accounts::list,
        crate::routes::service_accounts::create,
        crate::routes::service_accounts::retrieve,
        crate::routes::service_accounts::update,
        crate::routes::service_accounts::delete,
        crate::routes::service_accounts::create_key,
        crate::routes::project_api_keys::list,
        crate::routes::project_api_keys::create,
        crate::routes::project_api_keys::retrieve,
        crate::routes::project_api_keys::delete,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::mcp::toggle_admin_key,
        crate::routes::mcp::toggle_project_key,
    ),
    components(schemas(
        json::AdminApiKey,
        json::AdminApiKeyCreateResponse,
        List<json::AdminApiKey>,
        json::AdminApiKeyDeleted,
        json::CreateAdminApiKeyRequest,
        json::UpdateAdminApiKeyRequest,
        json::RotateAdminApiKeyRequest,
        json::AdminApiKeyRotateResponse,
        json::ListOrder,
        json::KeyStatusParam,
        crate::domain::Scope,
        json::Owner,
        crate::routes::audit_logs::AuditLog,
        List<crate::routes::audit_logs::AuditLog>,
        crate::routes::users::json::UserJson,
        List<crate::routes::users::json::UserJson>,
        crate::routes::users::json::UserDeleted,
        crate::routes::users::json::ModifyUserRequest,
        crate::domain::Role,
        crate::routes::introspect::IntrospectRequest,
        crate::routes::introspect::Introspection,
        crate::routes::invites::json::InviteJson,
        List<crate::routes::invites::json::InviteJson>,
        crate::routes::invites::json::InviteCreateResponse,
        crate::routes::invites::json::InviteDeleted,
        crate::routes::invites::json::InviteRequest,
        crate::routes::invites::json::InviteProject,
        crate::routes::invites::json::AcceptInviteRequest,
        crate::routes::invites::json::AcceptInviteResponse,
        crate::models::invite::InviteStatus,
        crate::routes::projects::json::ProjectJson,
        List<crate::routes::projects::json::ProjectJson>,
        crate::routes::projects::json::ProjectCreateRequest,
        crate::routes::projects::json::ProjectUpdateRequest,
        crate::routes::projects::json::ProjectStatus,
        crate::routes::projects::json::Residency,
        crate::routes::projects::users::ProjectUserJson,
        List<crate::routes::projects::users::ProjectUserJson>,
        crate::routes::projects::users::ProjectUserDeleteResponse,
        crate::routes::projects::users::ProjectUserCreateRequest,
        crate::routes::projects::users::ProjectUserUpdateRequest,
        crate::domain::ProjectRole,
        crate::routes::projects::rate_limits::RateLimitJson,
        List<crate::routes::projects::rate_limits::RateLimitJson>,
        crate::routes::projects::rate_limits::ProjectRateLimitUpdateRequest,
        crate::routes::service_accounts::json::ServiceAccountJson,
        List<crate::routes::service_accounts::json::ServiceAccountJson>,
        crate::routes::service_accounts::json::ServiceAccountCreated,
        crate::routes::service_accounts::json::ServiceAccountApiKeyJson,
        crate::routes::service_accounts::json::ServiceAccountDeleted,
        crate::routes::service_accounts::json::CreateServiceAccountRequest,
        crate::routes::service_accounts::json::UpdateServiceAccountRequest,
        crate::routes::service_accounts::json::CreateServiceAccountKeyRequest,
        crate::routes::project_api_keys::json::ProjectApiKeyJson,
        List<crate::routes::project_api_keys::json::ProjectApiKeyJson>,
        crate::routes::project_api_keys::json::ProjectApiKeyCreated,
        crate::routes::project_api_keys::json::ProjectApiKeyDeleted,
        crate::routes::project_api_keys::json::CreateProjectApiKeyRequest,
        crate::routes::project_api_keys::json::OwnerJson,
        crate::routes::project_api_keys::json::OwnerUserJson,
        crate::routes::project_api_keys::json::OwnerServiceAccountJson,
        crate::routes::project_api_keys::json::OwnerProjectAccess,
        crate::routes::project_api_keys::json::OwnerType,
        crate::routes::mcp::McpPolicyJson,
        crate::routes::mcp::McpPolicyRequest,
        crate::routes::mcp::McpToggleRequest,
        ErrorResponse,
        ErrorBody,
        crate::routes::health::ProbeStatus,
    ), responses(
        responses::Unauthorized,
        responses::Forbidden,
        responses::RateLimited,
        responses::ServerError,
        responses::Unavailable,
        responses::InvalidBody,
        responses::BodyTimeout,
        responses::BodyTooLarge,
        responses::CompressedBody,
    )),
    modifiers(&SecurityAddon, &Bounds, &ProbesAtTheRoot),
    tags(
        (name = "Admin API keys", description = "Keys that authenticate calls to this API."),
        (name = "Audit logs", description = "The append-only record of changes to keys, users and invites."),
        (name = "Verification", description = "For the operator's other services and proxies: is this key good, whose is it, what may it do?"),
        (name = "Users", description = "The members of the organisation, who own keys."),
        (name = "Invites", description = "Invitations to join the organisation, and accepting them with their token."),
        (name = "Projects", description = "Projects, their members and their per-model rate limits: where the keys applications use live."),
        (name = "Probes", description = "For orchestrators: is the process up, can it serve? No key needed; served at the root only, not under `/v1`.")
    )
)]
pub struct ApiDoc;

/// The probes answer at the root only (outside `/v1`): their path items carry a server entry
/// of their own that overrides the document's `/v1`.
struct ProbesAtTheRoot;

impl Modify for ProbesAtTheRoot {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in ["/healthz", "/readyz"] {
            if let Some(item) = openapi.paths.paths.get_mut(path) {
                item.servers = Some(vec![Server::new("/")]);
            }
        }
    }
}

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
        components.add_security_scheme(
            "ForwardAuthKeyHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "For `/forward-auth` only: the key in a header of its own, read when the \
                 request has no bearer token. The header's name is `FORWARD_AUTH_KEY_HEADER`.",
            ))),
        );
    }
}

/// Sets the schema bounds from the constants the validation uses, so the two cannot drift
/// (utoipa's attributes take only literals).
struct Bounds;

impl Modify for Bounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bound = |schema: &str, field: &str, min: i64, max: i64| {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
                && let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field)
            {
                set_range(property, min, max);
            }
        };
        bound(
            "CreateAdminApiKeyRequest",
            "expires_in_seconds",
            1,
            MAX_EXPIRES_IN_SECONDS,
        );
        bound(
            "RotateAdminApiKeyRequest",
            "expires_in_seconds",
            1,
            MAX_EXPIRES_IN_SECONDS,
        );
        bound(
            "RotateAdminApiKeyRequest",
            "previous_key_expires_in_seconds",
            0,
            MAX_OVERLAP_SECONDS,
        );
        for (schema, field) in [
            ("CreateAdminApiKeyRequest", "name"),
            ("UpdateAdminApiKeyRequest", "name"),
            ("AcceptInviteRequest", "name"),
            ("ProjectCreateRequest", "name"),
        ] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
                && let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field)
            {
                property.min_length = Some(1);
                property.max_length = Some(MAX_NAME_CHARS);
            }
        }
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut("InviteRequest")
            && let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut("email")
        {
            property.max_length = Some(MAX_EMAIL_CHARS);
        }
        for item in openapi.paths.paths.values_mut() {
            let Some(get) = item.get.as_mut() else {
                continue;
            };
            for parameter in get.parameters.iter_mut().flatten() {
                limit_range(parameter);
            }
        }
    }
}

fn set_range(property: &mut Object, min: i64, max: i64) {
    property.minimum = Some(min.into());
    property.maximum = Some(max.into());
}

/// Bounds the `limit` query parameter of list operations.
fn limit_range(parameter: &mut Parameter) {
    if parameter.name == "limit"
        && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
    {
        set_range(schema, 1, MAX_LIMIT);
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

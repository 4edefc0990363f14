//! `POST /introspect`: RFC 7662 token introspection, so the operator's other services can ask
//! whether a key is good, whose it is and what it may do.
//!
//! Policy: the caller presents its own admin key holding `keys.introspect` (the RFC asks for
//! the endpoint to be protected against token scanning). The token, an admin key or a project
//! key, is checked on the one verification path (`auth::verify_introspected`: format, cache,
//! the database only on a miss, enabled, expiry, owner and, for a project key, the owner's
//! access to the project), so a cached key costs no database round trip and an unknown one
//! costs one per TTL (then the negative cache answers). A project key's answer is built from
//! the cache alone: it carries no `key` object. Whatever makes a token
//! unusable, the answer is `{"active": false}` with no reason. Introspecting an active key
//! counts as a use of it for `last_used_at`. Every active answer carries the key's effective
//! MCP policy (`mcp`, from the cache), so an MCP server acting as an RFC 7662 resource server
//! can enforce it.

use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::middleware::from_fn;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::auth::{self, AdminKey, ProjectKey, Verdict};
use crate::domain::{Permissions, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, RequestBody};
use crate::metrics::{self, Via};
use crate::routes::admin_api_keys::json::view_body;
use crate::routes::admin_api_keys::retrieve::view_of;
use crate::routes::method_not_allowed;
use crate::state::AppState;

/// Registers `/introspect` (relative to `/v1` or the root), behind the admin key middleware.
pub fn routes(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.service(
        web::resource(format!("{prefix}/introspect"))
            .name("introspect")
            .wrap(from_fn(auth::require_admin_key))
            .route(web::post().to(introspect))
            .default_service(method_not_allowed("POST")),
    );
}

/// Body of an introspection, as a form (`application/x-www-form-urlencoded`, RFC 7662) or as
/// JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    /// The key to check: an admin key or a project key.
    #[schema(value_type = String, required = true)]
    pub token: Option<String>,
    /// Accepted as RFC 7662 allows, and ignored: a key's prefix says what it is.
    #[schema(nullable = true)]
    pub token_type_hint: Option<String>,
}

impl RequestBody for IntrospectRequest {
    const FIELDS: &'static [&'static str] = &["token", "token_type_hint"];

    fn expects(_: &str) -> String {
        "a string".to_owned()
    }
}

/// What introspection says of a token. For anything but a usable key only `active: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is a key that works now.
    pub active: bool,
    /// `admin_api_key` or `project_api_key` when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "admin_api_key")]
    pub token_type: Option<&'static str>,
    /// The project of a project key; left out for an admin key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// What owns the key: `user`, or `service_account` for a service account's project key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "user")]
    pub owner_type: Option<&'static str>,
    /// The key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The id of the key's owner (a user, or a service account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// An admin key's effective scopes (its own, within its owner's role), or a project key's
    /// scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// An admin key's effective permissions (its own, within its owner's ceiling), or a project
    /// key's scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub permissions: Option<Permissions>,
    /// When the key was made, in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// When the key stops working, in Unix seconds; left out if it never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// An admin key's object, as retrieve shows it (not sent for project keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::routes::admin_api_keys::json::AdminApiKey>)]
    pub key: Option<Box<RawValue>>,
    /// The key's effective MCP policy (its preset resolved), for an MCP server that enforces
    /// it itself: `active: false` means refuse every MCP request of this key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<crate::routes::mcp::McpPolicyJson>,
}

/// Introspect a key
///
/// Says whether `token` is a key that works now (an admin key, or a project key of a member or
/// a service account) and, if so, whose it is, which project it belongs to and what it may do
/// (RFC 7662). Anything else (malformed, unknown, deleted, expired, disabled, a disabled
/// owner, a project key whose owner lost access to the project, or an admin key left with no
/// effective scope and no effective permission) is `{"active": false}`, without a reason.
/// Needs `keys.introspect`.
#[utoipa::path(
    post,
    path = "/introspect",
    operation_id = "introspect-token",
    tag = "Verification",
    request_body(
        content(
            (IntrospectRequest = "application/x-www-form-urlencoded"),
            (IntrospectRequest = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "What the token is.", body = Introspection),
        (status = 400, description = "`token` is missing, or the body is not a form or JSON object of `token` and `token_type_hint`.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn introspect(
    caller: AdminKey,
    state: web::Data<AppState>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::KeysIntrospect)?;
    let body: IntrospectRequest = body.parse_form_or_json().await?;
    let token = body
        .token
        .ok_or_else(|| ApiError::invalid_param("token", "`token` is required."))?;
    let verdict = auth::verify_introspected(&state, &token).await;
    metrics::auth(
        Via::Introspection,
        auth::outcome(verdict.as_ref().map(Verdict::has_access), Some(&token)),
    );
    let body = match verdict {
        // A key that can do nothing (its owner's role and ceiling leave it no scope and no
        // permission) is as good as no key to a resource server.
        Ok(Verdict::Admin(key)) if key.has_access() => describe(&state, &key).await?,
        Ok(Verdict::Project(key)) => rendered(&key.introspection, || describe_project(&key))?,
        Ok(Verdict::Admin(_)) | Err(ApiError::Unauthorized { .. }) => Bytes::from_static(INACTIVE),
        Err(other) => return Err(other),
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// The answer for anything but a usable key.
const INACTIVE: &[u8] = br#"{"active":false}"#;

/// The answer `memo` holds, rendering it from `answer` the first time (the memo lives in the
/// key's cache entry, so a change to the key drops it with the entry).
fn rendered(
    memo: &OnceLock<Bytes>,
    answer: impl FnOnce() -> Introspection,
) -> Result<Bytes, ApiError> {
    if let Some(body) = memo.get() {
        return Ok(body.clone());
    }
    let body: Bytes = serde_json::to_vec(&answer())
        .map_err(|e| ApiError::Internal(Box::new(e)))?
        .into();
    Ok(memo.get_or_init(|| body).clone())
}

/// The answer for a usable admin key (inactive if it went away in the meantime): what the
/// auth cache knows, rendered once per entry, and the key's object as retrieve shows it (with
/// its latest use) appended as `key`.
async fn describe(state: &AppState, key: &AdminKey) -> Result<Bytes, ApiError> {
    let Some(view) = view_of(state, &key.key_id).await? else {
        return Ok(Bytes::from_static(INACTIVE));
    };
    let object = view_body(&view, &state.usage, state.cache.mcp_presets())?;
    let head = rendered(&key.introspection, || {
        let scope: Vec<&str> = key.scopes.iter().map(Scope::as_str).collect();
        Introspection {
            active: true,
            token_type: Some("admin_api_key"),
            project_id: None,
            owner_type: Some("user"),
            client_id: Some(key.key_id.clone()),
            sub: Some(key.owner.id.clone()),
            scope: Some(scope.join(" ")),
            permissions: Some(key.permissions.clone()),
            iat: Some(view.key.0.created_at),
            exp: key.expires_at,
            key: None,
            mcp: Some(key.mcp.clone().into()),
        }
    })?;
    // `head` is a JSON object with at least `active`: reopen it and add `key`.
    let open = head
        .strip_suffix(b"}")
        .ok_or_else(|| ApiError::Internal("a rendered introspection is not an object".into()))?;
    let mut body = BytesMut::with_capacity(open.len() + object.len() + 8);
    body.extend_from_slice(open);
    body.extend_from_slice(br#","key":"#);
    body.extend_from_slice(&object);
    body.extend_from_slice(b"}");
    Ok(body.freeze())
}

/// The answer for a usable project key, from the cache alone.
fn describe_project(key: &ProjectKey) -> Introspection {
    Introspection {
        active: true,
        token_type: Some("project_api_key"),
        project_id: Some(key.project_id.clone()),
        owner_type: Some(key.owner.kind()),
        client_id: Some(key.key_id.clone()),
        sub: Some(key.owner.id().to_owned()),
        scope: Some(key.scopes_header.clone()),
        permissions: Some(key.scopes.clone()),
        iat: Some(key.created_at),
        exp: key.expires_at,
        key: None,
        mcp: Some(key.mcp.clone().into()),
    }
}

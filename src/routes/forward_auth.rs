//! `/forward-auth`: the check a reverse proxy makes before passing a request upstream (nginx
//! `auth_request`, Traefik `ForwardAuth`, Envoy `ext_authz` in HTTP mode, Caddy
//! `forward_auth`).
//!
//! Policy:
//! - The proxy sends the original request's headers; the key is its `Authorization: Bearer`
//!   token or, failing that, the value of the configured key header (`X-Api-Key` by default).
//!   Two different keys in one request are refused rather than one picked.
//! - The key is checked on the one verification path (`auth::verify`: format, cache, the
//!   database only on a miss, enabled, expiry, owner, the unknown-key lookup limit), and the use
//!   counts for `last_used_at`. Admin keys and project keys (`sk-proj-`, `sk-svcacct-`) are both
//!   accepted; a project key whose owner lost access to the project (archived, member removed,
//!   user disabled) is refused with 401 `owner_inactive`. Every method is accepted: proxies
//!   forward the original one.
//! - Rate limits (project keys only): when the request names a model, by `?model=` or the
//!   `X-Model` header the proxy sets, or in the JSON body a proxy forwards (Envoy `ext_authz`
//!   `with_request_body`; read up to 256 KiB, never required), the project's per-model
//!   `max_requests_per_1_minute` and `max_requests_per_1_day` apply (`services::request_limits`):
//!   200 then carries OpenAI's `x-ratelimit-*-requests` headers, and a spent budget is a 429
//!   `rate_limit_exceeded` with them and `Retry-After`. Sources that disagree, or a body too
//!   large to vouch for with no model named by the proxy, are refused with 400. A request that
//!   names no model is not limited per model. Budgets are per replica (see `model_limits`).
//! - `?project=` (repeatable) restricts the location to keys of those projects: any other key,
//!   an admin key included, gets 403 `wrong_project`.
//! - Required permissions come from the proxy's configuration: `?permission=` (repeatable) and
//!   the `X-Required-Permission` header (comma-separated, repeatable). The key must cover every
//!   one: an admin key with its permissions, a project key with its scopes (the same patterns).
//!   Extra ones a client manages to add can only make the check stricter.
//! - A key's permissions count within its owner's ceiling (see `services::users`), and a key
//!   left with no effective scope and no effective permission is refused whatever is
//!   required (403 `no_effective_access`). A project key with no scopes passes checks that
//!   require nothing.
//! - 200 with an empty body and the `X-Api-Key-*` headers for the upstream; 401 (with
//!   `WWW-Authenticate: Bearer`) and the codes of this service's own authentication; 403
//!   `missing_permission`, which names no permission (the list may come from the client).
//! - MCP (an extension): when the gateway names an MCP server instance, project, tool or
//!   whether the tool is read-only (`mcp_instance`, `mcp_project`, `mcp_tool`,
//!   `mcp_read_only`, or the `X-Mcp-*` headers), the key's effective MCP policy (cached with
//!   the key: no database statement) must allow it: 403 `mcp_paused`,
//!   `mcp_instance_not_allowed`, `mcp_project_not_allowed`, `mcp_tool_not_allowed` or
//!   `mcp_read_only` otherwise. A forwarded JSON-RPC body's `tools/call` names the tool too
//!   (read within the same bound as `model`, never required). A request with none of these
//!   is checked exactly as before (see `domain::mcp`).
//! - `/forward-auth/<anything>` is the same check for proxies that append the original path
//!   (Envoy's `path_prefix`): there the path and the query parameters other than `permission`
//!   and `project` belong to the original request and are ignored.

use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::{self, AdminKey, ProjectKey, Verdict};
use crate::cache::headers::VerdictHeaders;
use crate::domain::BodyModel;
use crate::domain::Permissions;
use crate::domain::model::{MAX_BODY_SCAN_BYTES, model_in_body};
use crate::domain::permissions::{self, MAX_PERMISSIONS};
use crate::domain::rate_limits::ModelName;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::metrics::{self, Via};
use crate::model_limits::quota_headers;
use crate::routes::mcp::McpAsked;
use crate::services::request_limits;
use crate::state::AppState;

/// The header a proxy may set to name the permissions a location needs.
pub const REQUIRED_PERMISSION: &str = "x-required-permission";
pub use crate::cache::headers::{KEY_ID, OWNER_ID, OWNER_TYPE, PERMISSIONS, PROJECT_ID, SCOPES};

/// Registers `/forward-auth` and `/forward-auth/{path}` under `prefix` (`/v1` or the root) for
/// every method. The first is a plain path, matched by one comparison; the second sits in a
/// scope, so a request for any other path is told apart by a comparison of its start rather
/// than by trying the pattern.
pub fn routes(cfg: &mut web::ServiceConfig, prefix: &str) {
    cfg.service(
        web::resource(format!("{prefix}/forward-auth"))
            .name("forward_auth")
            .to(forward_auth),
    )
    .service(
        web::scope(&format!("{prefix}/forward-auth")).service(
            web::resource("/{path:.*}")
                .name("forward_auth_path")
                .to(forward_auth_any_path),
        ),
    );
}

/// Check a key for a proxy
///
/// Authenticates the key of the request a reverse proxy is about to pass upstream (its
/// `Authorization: Bearer` token, else the `X-Api-Key` header), an admin key or a project key,
/// and checks that it holds every required permission (a project key: in its scopes) and, when
/// the location names projects, that it is a key of one of them. 200 means let it through,
/// with the key's id, owner, project, scopes and permissions in response headers for the
/// upstream. For a project key and a request that names a model (`model`, `X-Model`, or the
/// `model` of a JSON body the proxy forwards), one request is taken from the project's
/// per-model budgets: 429 when they are spent. Every method answers alike (documented here as
/// GET). `/forward-auth/{path}` does the same for proxies that append the original path,
/// ignoring that path and every query parameter but `permission` and `project`.
#[utoipa::path(
    get,
    path = "/forward-auth",
    operation_id = "forward-auth",
    tag = "Verification",
    params(
        ("permission" = Option<Vec<String>>, Query, explode = true,
         description = "A permission the key must hold (covered by one of its own, patterns included); repeat for several, all required."),
        ("X-Required-Permission" = Option<String>, Header,
         description = "More required permissions, comma-separated, for proxies that configure headers rather than URLs."),
        ("model" = Option<String>, Query,
         description = "The model the request is for, for the project's per-model rate limits (project keys). Not read on `/forward-auth/{path}`, where the query is the original request's."),
        ("X-Model" = Option<String>, Header,
         description = "The model the request is for, set by the proxy; must agree with `model` and with a forwarded body's `model`."),
        ("project" = Option<Vec<String>>, Query, explode = true,
         description = "A project whose keys may pass; repeat for several. When given, only project keys of one of them pass (admin keys do not)."),
        ("mcp_instance" = Option<String>, Query,
         description = "MCP check: the MCP server instance the request goes to. Any `mcp_*` parameter or `X-Mcp-*` header makes the check an MCP check, refused while the key's MCP access is paused."),
        ("mcp_project" = Option<String>, Query,
         description = "MCP check: the project of that MCP server."),
        ("mcp_tool" = Option<String>, Query,
         description = "MCP check: the tool called. A forwarded JSON-RPC `tools/call` body names it too; they must agree."),
        ("mcp_read_only" = Option<bool>, Query,
         description = "MCP check: whether the MCP server marks the tool read-only (`readOnlyHint`). A read-only key is refused a called tool unless this is `true`."),
        ("X-Mcp-Instance" = Option<String>, Header, description = "As `mcp_instance`, set by a gateway (the only MCP source on `/forward-auth/{path}`)."),
        ("X-Mcp-Project" = Option<String>, Header, description = "As `mcp_project`."),
        ("X-Mcp-Tool" = Option<String>, Header, description = "As `mcp_tool`."),
        ("X-Mcp-Read-Only" = Option<String>, Header, description = "As `mcp_read_only`."),
    ),
    responses(
        (status = 200, description = "The key is good and holds every required permission; pass the request on.",
         headers(
             ("X-Api-Key-Id" = String, description = "The key's id."),
             ("X-Api-Key-Owner-Id" = String, description = "The id of the key's owner: a user, or for a service account's key the service account."),
             ("X-Api-Key-Owner-Type" = String, description = "`user` or `service_account`."),
             ("X-Api-Key-Project-Id" = String, description = "The key's project; sent for project keys only."),
             ("X-Api-Key-Scopes" = String, description = "An admin key's effective scopes (within its owner's role), or a project key's scopes, space-separated."),
             ("X-Api-Key-Permissions" = String, description = "An admin key's effective permissions (its own, within its owner's ceiling), or a project key's scopes (what `permission` was checked against), space-separated; empty when it has none."),
             ("x-ratelimit-limit-requests" = u64, description = "With a project key and a named model: the limit of the budget closest to running out (per minute or per day)."),
             ("x-ratelimit-remaining-requests" = u64, description = "Requests left in that budget."),
             ("x-ratelimit-reset-requests" = String, description = "Until that budget is full again, as OpenAI writes it (`20ms`, `6m0s`)."),
         )),
        (status = 400, description = "A required permission, project or model (from the proxy's configuration) is not valid, the query has a parameter other than `permission`, `project` and `model`, the model sources disagree (`ambiguous_model`), or a forwarded body is too large to tell its model (`model_unreadable`); for an MCP check, an `mcp_*` value or header is malformed (`invalid_mcp_parameter`), its sources disagree (`ambiguous_mcp_parameter`), or the body is too large to tell its tool (`mcp_tool_unreadable`).", body = crate::error::ErrorResponse),
        (status = 401, description = "No key, or one that is malformed, unknown, deleted, disabled, expired, whose owner is disabled or (a project key) whose owner lost access to the project, or two different keys (codes `missing_api_key`, `invalid_api_key`, `api_key_disabled`, `api_key_expired`, `user_disabled`, `owner_inactive`, `multiple_api_keys`, `multiple_authorization_headers`). Comes with `WWW-Authenticate: Bearer`.", body = crate::error::ErrorResponse),
        (status = 403, description = "The key lacks a required permission (`missing_permission`), is not a key of a project the location allows (`wrong_project`), or can do nothing at all: no effective scope and no effective permission (`no_effective_access`). An MCP check refuses with `mcp_paused`, `mcp_instance_not_allowed`, `mcp_project_not_allowed`, `mcp_tool_not_allowed` or `mcp_read_only`.", body = crate::error::ErrorResponse),
        (status = 429, description = "The project's request limit for the model is spent (`rate_limit_exceeded`, with `Retry-After` and the `x-ratelimit-*-requests` headers), or this client presented too many unknown keys.", body = crate::error::ErrorResponse,
         headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, response = crate::error::responses::ServerError),
        (status = 503, response = crate::error::responses::Unavailable),
    ),
    security(("AdminApiKeyAuth" = []), ("ForwardAuthKeyHeader" = []))
)]
pub async fn forward_auth(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = authenticate(&state, &req).await?;
    let mut query = QueryParams::parse(req.query_string())?;
    let required = required_permissions(&req, &mut query)?;
    let projects = allowed_projects(&mut query)?;
    let model = query_model(&mut query)?;
    let mcp = McpAsked::from_request(&req, Some(&mut query))?;
    query.finish()?;
    let response = let_through(&key, &required, &projects)?;
    let body = check_mcp(&key, mcp, Forwarded::Unread(body)).await?;
    limit_requests(&state, &req, &key, model, body, response).await
}

/// `/forward-auth/{path}`: as [`forward_auth`], except that query parameters other than
/// `permission` belong to the original request and are ignored. `permission` still counts (a
/// client who adds one only makes the check stricter), so a stray `/` in a proxy's URL cannot
/// turn a requirement off.
async fn forward_auth_any_path(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = authenticate(&state, &req).await?;
    let mut query = QueryParams::parse(req.query_string())?;
    let required = required_permissions(&req, &mut query)?;
    let projects = allowed_projects(&mut query)?;
    // `model` in this query is the original request's, which its client controls; so are
    // its `mcp_*` parameters: only the gateway's `X-Mcp-*` headers count here.
    let mcp = McpAsked::from_request(&req, None)?;
    let response = let_through(&key, &required, &projects)?;
    let body = check_mcp(&key, mcp, Forwarded::Unread(body)).await?;
    limit_requests(&state, &req, &key, None, body, response).await
}

/// The forwarded body: not read yet, or read (`None`: larger than [`MAX_BODY_SCAN_BYTES`]).
enum Forwarded {
    Unread(web::Payload),
    Read(Option<web::BytesMut>),
}

impl Forwarded {
    async fn bytes(self) -> Result<Option<web::BytesMut>, ApiError> {
        match self {
            Self::Unread(body) => read_bounded(body).await,
            Self::Read(bytes) => Ok(bytes),
        }
    }
}

/// The MCP check, when the gateway asks one (`asked`): the key's effective MCP policy (from
/// the cache, as the rest of the verdict) against the instance, project and tool named, the
/// tool also read from a forwarded JSON-RPC body. Without `asked`, nothing is done.
async fn check_mcp(
    key: &Verdict,
    asked: Option<McpAsked>,
    body: Forwarded,
) -> Result<Forwarded, ApiError> {
    let Some(asked) = asked else {
        return Ok(body);
    };
    let bytes = body.bytes().await?;
    let call = asked.call(bytes.as_deref())?;
    let policy = match key {
        Verdict::Admin(key) => &key.mcp,
        Verdict::Project(key) => &key.mcp,
    };
    crate::routes::mcp::check(policy, &call)?;
    Ok(Forwarded::Read(bytes))
}

/// `?model=`: the model the proxy says the request is for. Given twice or empty (a templated
/// value that came out empty) it is refused, not skipped.
fn query_model(query: &mut QueryParams) -> Result<Option<ModelName>, ApiError> {
    let mut models = query.take_each("model[]");
    if models.len() > 1 {
        return Err(ApiError::invalid_param(
            "model",
            "`model` may be given only once.",
        ));
    }
    models
        .pop()
        .map(|model| ModelName::parse("model", &model).map_err(|_| invalid_model()))
        .transpose()
}

/// For a project key and a request that names a model: takes one request from the project's
/// budget for the model, adding OpenAI's `x-ratelimit-*-requests` headers to `response`, or
/// refuses it with 429. Other keys and requests pass as they are.
async fn limit_requests(
    state: &AppState,
    req: &HttpRequest,
    key: &Verdict,
    query_model: Option<ModelName>,
    body: Forwarded,
    mut response: HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let Verdict::Project(key) = key else {
        return Ok(response);
    };
    let Some(model) = requested_model(req, query_model, body).await? else {
        return Ok(response);
    };
    if let Some(quota) = request_limits::take_request(state, &key.project_id, &model).await? {
        let headers = response.headers_mut();
        for (name, value) in quota_headers(&quota) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

/// The header a proxy sets to name the request's model.
pub const MODEL: &str = "x-model";
/// The header Envoy's `ext_authz` sets when it forwarded only the start of the body.
const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// The model the request is for: named by the proxy (`?model=`, `X-Model`) or by the JSON
/// body it forwarded. Two sources that disagree are refused (a client could otherwise be
/// counted against one model and served another); so is a body too large to vouch for when
/// the proxy names no model.
async fn requested_model(
    req: &HttpRequest,
    query_model: Option<ModelName>,
    body: Forwarded,
) -> Result<Option<ModelName>, ApiError> {
    let named = proxy_named_model(req, query_model)?;
    let complete = !req
        .headers()
        .get(PARTIAL_BODY)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let in_body = match body.bytes().await? {
        Some(bytes) => model_in_body(&bytes, complete),
        None => BodyModel::Unreadable,
    };
    match (named, in_body) {
        (_, BodyModel::Ambiguous) => Err(ambiguous_model()),
        (Some(named), BodyModel::Named(m)) if named.as_str() != m => Err(ambiguous_model()),
        (Some(named), _) => Ok(Some(named)),
        (None, BodyModel::Named(m)) => ModelName::parse("model", &m)
            .map(Some)
            .map_err(|_| invalid_model()),
        (None, BodyModel::Unnamed) => Ok(None),
        (None, BodyModel::Unreadable) => Err(ApiError::InvalidRequest {
            message: format!(
                "The forwarded body is larger than {MAX_BODY_SCAN_BYTES} bytes (or was cut \
                 short), so its model cannot be told; have the proxy name the model with \
                 `X-Model` or `?model=`."
            ),
            param: None,
            code: Some("model_unreadable"),
        }),
    }
}

/// The model the proxy names: `?model=` and `X-Model` (sent once), which must agree.
fn proxy_named_model(
    req: &HttpRequest,
    query_model: Option<ModelName>,
) -> Result<Option<ModelName>, ApiError> {
    let mut headers = req.headers().get_all(MODEL);
    let header_model = match (headers.next(), headers.next()) {
        (None, _) => None,
        (Some(value), None) => Some(
            value
                .to_str()
                .map_err(|_| invalid_model())
                .and_then(|m| ModelName::parse("model", m).map_err(|_| invalid_model()))?,
        ),
        (Some(_), Some(_)) => return Err(ambiguous_model()),
    };
    match (query_model, header_model) {
        (Some(q), Some(h)) if q != h => Err(ambiguous_model()),
        (q, h) => Ok(q.or(h)),
    }
}

/// The forwarded body, if it is at most [`MAX_BODY_SCAN_BYTES`] (empty when none was sent);
/// `None` when it is larger (the rest is left unread).
async fn read_bounded(mut body: web::Payload) -> Result<Option<web::BytesMut>, ApiError> {
    use futures_util::StreamExt;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::invalid_param("body", "The body could not be read."))?;
        if bytes.len() + chunk.len() > MAX_BODY_SCAN_BYTES {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

fn invalid_model() -> ApiError {
    ApiError::InvalidRequest {
        message: "The model named for rate limiting (`model`, `X-Model` or the body's `model`) \
                  must be 1 to 128 ASCII letters, digits and `-._:/@+`."
            .to_owned(),
        param: Some("model".to_owned()),
        code: Some("invalid_model"),
    }
}

fn ambiguous_model() -> ApiError {
    ApiError::InvalidRequest {
        message: "The request names more than one model (`model`, `X-Model` and the body's \
                  `model` disagree, or one is given twice); name one."
            .to_owned(),
        param: Some("model".to_owned()),
        code: Some("ambiguous_model"),
    }
}

async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Verdict, ApiError> {
    let (result, token) = match presented_key(req, state.forward_auth_key_header.as_ref()) {
        Ok(token) => (auth::verify(state, req, token).await, Some(token)),
        Err(e) => (Err(e), None),
    };
    metrics::auth(
        Via::ForwardAuth,
        auth::outcome(result.as_ref().map(Verdict::has_access), token),
    );
    let key = result?;
    auth::record_key_id(req, key.key_id());
    Ok(key)
}

/// The key the original request presents: see the module policy.
fn presented_key<'r>(
    req: &'r HttpRequest,
    key_header: Option<&HeaderName>,
) -> Result<&'r str, ApiError> {
    let bearer = req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
        .then(|| auth::bearer_token(req));
    let in_header = match key_header {
        Some(name) => single_value(req, name)?,
        None => None,
    };
    match (bearer, in_header) {
        (None, None) => Err(ApiError::unauthorized(
            "missing_api_key",
            "No API key was provided. Send it as `Authorization: Bearer <key>` or in the key header.",
        )),
        (Some(Ok(token)), Some(other)) if token != other => Err(ApiError::unauthorized(
            "multiple_api_keys",
            "The request carries two different keys; send one.",
        )),
        (Some(Ok(token)), _) => Ok(token),
        // Several `Authorization` headers: which one counts would be a guess.
        (Some(Err(ApiError::InvalidRequest { .. })), _) => Err(ApiError::unauthorized(
            "multiple_authorization_headers",
            "Send one `Authorization` header; this request has several.",
        )),
        // `Authorization` of another scheme (the upstream's own, say): the key header counts.
        (Some(Err(_)), Some(token)) | (None, Some(token)) => Ok(token),
        (Some(Err(e)), None) => Err(e),
    }
}

/// The value of header `name` if it is sent once; 401 if it is sent several times or is not
/// text (no key could be in it).
fn single_value<'r>(req: &'r HttpRequest, name: &HeaderName) -> Result<Option<&'r str>, ApiError> {
    let mut values = req.headers().get_all(name);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::unauthorized(
            "multiple_api_keys",
            "The key header is sent more than once; send one key.",
        ));
    }
    value
        .to_str()
        .map(|value| Some(value.trim()))
        .map_err(|_| auth::invalid_key())
}

/// The permissions required by `?permission=` and the `X-Required-Permission` headers. An
/// empty one is refused, not skipped: it is a templated value that came out empty, and
/// skipping it would let every key through.
fn required_permissions(
    req: &HttpRequest,
    query: &mut QueryParams,
) -> Result<Permissions, ApiError> {
    let mut required = query.take_each("permission[]");
    for value in req.headers().get_all(REQUIRED_PERMISSION) {
        let value = value.to_str().map_err(|_| invalid_required_permission())?;
        required.extend(value.split(',').map(|p| p.trim().to_owned()));
    }
    if required.len() > MAX_PERMISSIONS || !required.iter().all(|p| permissions::is_valid(p)) {
        return Err(invalid_required_permission());
    }
    Ok(required.into_iter().collect())
}

/// The most projects one location may name.
const MAX_PROJECTS: usize = 64;

/// The projects `?project=` allows (empty: any). An empty or implausible one is refused, not
/// skipped, as for permissions.
fn allowed_projects(query: &mut QueryParams) -> Result<Vec<String>, ApiError> {
    let projects = query.take_each("project[]");
    if projects.len() > MAX_PROJECTS || !projects.iter().all(|p| crate::ids::plausible(p)) {
        return Err(ApiError::InvalidRequest {
            message: format!(
                "The allowed projects (`project` in the query) must be at most {MAX_PROJECTS} \
                 project ids."
            ),
            param: None,
            code: Some("invalid_project"),
        });
    }
    Ok(projects)
}

fn invalid_required_permission() -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "The required permissions (`permission` in the query, `X-Required-Permission`) must \
             be at most {MAX_PERMISSIONS} permissions of 1 to {} letters, digits and \
             `_ . : / -`, optionally ending in `*`.",
            permissions::MAX_PERMISSION_CHARS
        ),
        param: None,
        code: Some("invalid_required_permission"),
    }
}

/// 200 with the key's headers if it can do something, covers every one of `required` and is
/// a key of one of `projects` (when any is named), else 403.
fn let_through(
    key: &Verdict,
    required: &Permissions,
    projects: &[String],
) -> Result<HttpResponse, ApiError> {
    let project = match key {
        Verdict::Admin(_) => None,
        Verdict::Project(key) => Some(key.project_id.as_str()),
    };
    if !projects.is_empty() && !project.is_some_and(|p| projects.iter().any(|a| a == p)) {
        return Err(ApiError::Forbidden {
            message: "This key does not belong to a project this resource accepts.".to_owned(),
            code: "wrong_project".to_owned(),
        });
    }
    match key {
        Verdict::Admin(key) => admin_headers(key, required),
        Verdict::Project(key) => project_headers(key, required),
    }
}

fn missing_permission() -> ApiError {
    ApiError::Forbidden {
        message: "This key lacks a permission that this resource requires.".to_owned(),
        code: "missing_permission".to_owned(),
    }
}

fn admin_headers(key: &AdminKey, required: &Permissions) -> Result<HttpResponse, ApiError> {
    if !key.has_access() {
        return Err(ApiError::Forbidden {
            message: "This key can do nothing: within its owner's role and permissions it \
                      holds no scope and no permission."
                .to_owned(),
            code: "no_effective_access".to_owned(),
        });
    }
    if key.permissions.first_uncovered(required).is_some() {
        return Err(missing_permission());
    }
    respond(&key.headers)
}

fn project_headers(key: &ProjectKey, required: &Permissions) -> Result<HttpResponse, ApiError> {
    if key.scopes.first_uncovered(required).is_some() {
        return Err(missing_permission());
    }
    respond(&key.headers)
}

/// 200 with the key's headers, rendered when its cache entry was filled.
fn respond(headers: &VerdictHeaders) -> Result<HttpResponse, ApiError> {
    let mut response = HttpResponse::Ok().finish();
    headers
        .apply(&mut response)
        .map_err(|name| ApiError::Internal(format!("{name} is not a header value").into()))?;
    Ok(response)
}

//! MCP access control on the wire (an extension, from seed 002): the `mcp` object every key
//! object carries, the `mcp` field that creates and updates take, and the toggle that pauses
//! or resumes one key's MCP access. The rules live in `domain::mcp` and `services::mcp`.

use actix_web::http::header::HeaderName;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AdminKey;
use crate::domain::mcp::{
    AllowlistMode, MAX_MCP_ENTRIES, MAX_MCP_ENTRY_CHARS, McpChange, McpChangeInput, McpRequest,
};
use crate::domain::{McpPolicy, McpPresets, Scope};
use crate::error::responses::{BodyErrors, SharedErrors};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::{JsonBody, NoQuery, RequestBody};
use crate::routes::admin_api_keys::json::AdminApiKey;
use crate::routes::method_not_allowed;
use crate::routes::project_api_keys::json::ProjectApiKeyJson;
use crate::services::{self, mcp};
use crate::state::AppState;

/// Registers the toggles (relative to the authenticated `/organization` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin_api_keys/{key_id}/mcp/toggle")
            .name("admin_api_key_mcp_toggle")
            .route(web::post().to(toggle_admin_key))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/projects/{project_id}/api_keys/{api_key_id}/mcp/toggle")
            .route(web::post().to(toggle_project_key))
            .default_service(method_not_allowed("POST")),
    );
}

/// A key's MCP policy, with its preset (if any) resolved: what MCP checks apply.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = McpPolicy)]
pub struct McpPolicyJson {
    /// `false` while MCP access is paused: every MCP check refuses the key, which keeps
    /// working for everything else.
    pub active: bool,
    /// The preset the key follows, by name (`null`: none). The fields it sets are shown here
    /// as the preset has them now, and change with it.
    #[schema(required = true, example = "read_only")]
    pub preset: Option<String>,
    /// The MCP server instances the key may reach; `[]` means any.
    pub instance_ids: Vec<String>,
    /// The projects whose MCP servers the key may reach; `[]` means any.
    pub project_ids: Vec<String>,
    /// `all`: every tool; `allowlist`: only those `tool_allowlist` covers.
    #[schema(value_type = String, example = "allowlist")]
    pub allowlist_mode: AllowlistMode,
    /// Tool names; a trailing `*` covers every tool whose name starts with what precedes it.
    #[schema(value_type = Vec<String>, example = json!(["search_*", "get_page"]))]
    pub tool_allowlist: crate::domain::Permissions,
    /// `true`: only tools the MCP server marks read-only (`readOnlyHint`) may be called.
    pub read_only: bool,
    /// Strings for the MCP server's own checks, patterns as key permissions.
    #[schema(value_type = Vec<String>)]
    pub permissions: crate::domain::Permissions,
}

impl McpPolicyJson {
    /// The wire form of a stored policy, resolved with `presets`.
    pub fn shown(stored: &McpPolicy, presets: &McpPresets) -> Self {
        Self::from(stored.effective(presets))
    }
}

impl From<McpPolicy> for McpPolicyJson {
    fn from(p: McpPolicy) -> Self {
        Self {
            active: p.active,
            preset: p.preset,
            instance_ids: p.instance_ids.to_vec(),
            project_ids: p.project_ids.to_vec(),
            allowlist_mode: p.allowlist_mode,
            tool_allowlist: p.tool_allowlist,
            read_only: p.read_only,
            permissions: p.permissions,
        }
    }
}

/// The `mcp` field of a create or update: every field optional. On a create, fields left out
/// are the calling key's own; on an update, the key's own. The result must be covered by the
/// calling key's own policy (403 `mcp_exceeds_caller`).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = McpPolicyRequest)]
pub struct McpPolicyRequest {
    /// `false` pauses MCP access, `true` resumes it.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
    /// A configured preset (`MCP_PRESETS`; `read_only` and `full` are built in), or `null` for
    /// none. The fields it sets win over the key's own and may not be sent with it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub preset: Option<Option<String>>,
    /// Up to 64 instance ids of 1 to 128 letters, digits and `_ . : / -`; `[]` for any.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 64)]
    pub instance_ids: Option<Vec<String>>,
    /// Up to 64 project ids, as `instance_ids`; `[]` for any.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 64)]
    pub project_ids: Option<Vec<String>>,
    /// `all` or `allowlist`.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub allowlist_mode: Option<AllowlistMode>,
    /// Up to 64 tool names, each optionally ending in `*`. Sent without `allowlist_mode`, it
    /// also sets the mode to `allowlist`.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 64)]
    pub tool_allowlist: Option<Vec<String>>,
    /// Only read-only tools.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub read_only: Option<bool>,
    /// Up to 64 permissions, shaped as key permissions.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 64)]
    pub permissions: Option<Vec<String>>,
}

/// What `mcp` accepts, for the errors of the bodies that carry it.
pub fn expects_mcp() -> String {
    format!(
        "an object of `active`, `preset`, `instance_ids`, `project_ids`, `allowlist_mode` \
         (`all` or `allowlist`), `tool_allowlist`, `read_only` and `permissions` (lists of at \
         most {MAX_MCP_ENTRIES} strings of 1 to {MAX_MCP_ENTRY_CHARS} characters)"
    )
}

/// The `mcp` member of a body as sent, read by [`requested`] with the same strictness as a
/// body itself: each field at most once, nothing unknown, errors that never repeat a value
/// (nor a field name that could be one).
#[derive(Debug, Deserialize, Serialize)]
#[serde(transparent)]
pub struct McpBody(Box<serde_json::value::RawValue>);

/// The MCP part of a create or update, checked against the configured presets.
pub fn requested(body: Option<McpBody>, presets: &McpPresets) -> Result<McpRequest, ApiError> {
    let body = body.map(|raw| strict(raw.0.get())).transpose()?;
    let change = body
        .map(|b| {
            McpChange::parse(
                McpChangeInput {
                    active: b.active,
                    preset: b.preset,
                    instance_ids: b.instance_ids,
                    project_ids: b.project_ids,
                    allowlist_mode: b.allowlist_mode,
                    tool_allowlist: b.tool_allowlist,
                    read_only: b.read_only,
                    permissions: b.permissions,
                },
                presets,
            )
        })
        .transpose()?;
    Ok(McpRequest {
        change,
        presets: presets.clone(),
    })
}

/// The fields of `McpPolicyRequest`, in documentation order.
const FIELDS: [&str; 8] = [
    "active",
    "preset",
    "instance_ids",
    "project_ids",
    "allowlist_mode",
    "tool_allowlist",
    "read_only",
    "permissions",
];

/// Reads `mcp` as an object of the known fields, each once.
fn strict(raw: &str) -> Result<McpPolicyRequest, ApiError> {
    let not_object = || ApiError::invalid_param("mcp", format!("`mcp` must be {}.", expects_mcp()));
    let names: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).map_err(|_| not_object())?;
    let given = member_names(raw).ok_or_else(not_object)?;
    if given.len() != names.len() {
        return Err(ApiError::invalid_param(
            "mcp",
            "`mcp` has a field given more than once; send each field once.",
        ));
    }
    if let Some(unknown) = given.iter().find(|n| !FIELDS.contains(&n.as_str())) {
        let param = if crate::extract::is_plain_name(unknown) {
            format!("mcp.{unknown}")
        } else {
            "mcp".to_owned()
        };
        return Err(ApiError::InvalidRequest {
            message: format!(
                "`mcp` has a field it does not take; it takes {}.",
                FIELDS.join(", ")
            ),
            param: Some(param),
            code: Some("unknown_parameter"),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = path.split(['.', '[']).next().unwrap_or_default();
        let field = FIELDS
            .iter()
            .find(|f| **f == field)
            .copied()
            .unwrap_or("mcp");
        ApiError::invalid_param(
            &format!("mcp.{field}"),
            format!("`mcp.{field}` must be {}.", expects_field(field)),
        )
    })
}

/// The member names of the JSON object `raw`, duplicates kept; `None` if it is not one.
fn member_names(raw: &str) -> Option<Vec<String>> {
    struct Names;
    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                names.push(name);
            }
            Ok(names)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    serde::Deserializer::deserialize_map(&mut deserializer, Names).ok()
}

fn expects_field(field: &str) -> String {
    match field {
        "active" | "read_only" => "`true` or `false`".to_owned(),
        "preset" => "a preset's name, or null".to_owned(),
        "allowlist_mode" => "`all` or `allowlist`".to_owned(),
        "permissions" => format!("an array of at most {MAX_MCP_ENTRIES} permission strings"),
        _ => format!(
            "an array of at most {MAX_MCP_ENTRIES} strings of 1 to {MAX_MCP_ENTRY_CHARS} characters"
        ),
    }
}

/// Body of a toggle; it may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpToggleRequest {
    /// The state to set: `true` resumes MCP access, `false` pauses it. Left out (or no body
    /// at all), the toggle flips the current state; sending it is the race-free form.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
}

impl RequestBody for McpToggleRequest {
    const FIELDS: &'static [&'static str] = &["active"];

    fn expects(_: &str) -> String {
        "`true` or `false`".to_owned()
    }
}

/// Pause or resume an admin API key's MCP access (extension)
///
/// Flips the key's `mcp.active`, or sets it to the body's `active`. A paused key is refused
/// by every MCP check (forward auth answers 403 `mcp_paused`; introspection shows
/// `mcp.active: false`) and keeps working for everything else. Resuming needs the calling
/// key's own MCP policy to cover the key's. Takes effect at once on every replica. Needs
/// `admin_api_keys.write`.
#[utoipa::path(
    post,
    path = "/organization/admin_api_keys/{key_id}/mcp/toggle",
    operation_id = "admin-api-keys-mcp-toggle",
    tag = "Admin API keys",
    params(("key_id" = String, Path, description = "Id of the key.")),
    request_body(content = Option<McpToggleRequest>, description = "Optional: `{\"active\": true|false}` sets the state; no body flips it."),
    responses(
        (status = 200, description = "The key after the toggle.", body = AdminApiKey),
        (status = 403, description = "Resuming would grant MCP access the calling key's policy does not cover (`mcp_exceeds_caller`), or the calling key lacks the scope.", body = ErrorResponse),
        (status = 404, description = "No key has this id.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn toggle_admin_key(
    caller: AdminKey,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysWrite)?;
    let body: McpToggleRequest = body.parse_or_default().await?;
    let presets = state.cache.mcp_presets().clone();
    let (key_id, now, resolve) = (key_id.into_inner(), state.clock.now(), presets.clone());
    let changed = services::write(&state, move |conn| {
        mcp::toggle_admin_key(conn, &caller, &key_id, body.active, &resolve, now)
    })
    .await?;
    tracing::info!(key_id = %changed.0.id, active = changed.0.mcp.active, "admin key MCP access toggled");
    Ok(HttpResponse::Ok().json(AdminApiKey::shown(changed, &state.usage, &presets)))
}

/// Pause or resume a project API key's MCP access (extension)
///
/// As for admin keys: flips the key's `mcp.active`, or sets it to the body's `active`, and
/// answers the key object. Refused on an archived project. Needs `projects.write`.
#[utoipa::path(
    post,
    path = "/organization/projects/{project_id}/api_keys/{api_key_id}/mcp/toggle",
    operation_id = "project-api-keys-mcp-toggle",
    tag = "Projects",
    params(
        ("project_id" = String, Path, description = "Id of the project."),
        ("api_key_id" = String, Path, description = "Id of the key."),
    ),
    request_body(content = Option<McpToggleRequest>, description = "Optional: `{\"active\": true|false}` sets the state; no body flips it."),
    responses(
        (status = 200, description = "The key after the toggle.", body = ProjectApiKeyJson),
        (status = 400, description = "The body is invalid, or the project is archived (`project_archived`).", body = ErrorResponse),
        (status = 403, description = "Resuming would grant MCP access the calling key's policy does not cover (`mcp_exceeds_caller`), or the calling key lacks the scope.", body = ErrorResponse),
        (status = 404, description = "No project, or no key of the project, has this id.", body = ErrorResponse),
        BodyErrors,
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn toggle_project_key(
    caller: AdminKey,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _: NoQuery,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ProjectsWrite)?;
    let body: McpToggleRequest = body.parse_or_default().await?;
    let presets = state.cache.mcp_presets().clone();
    let ((project_id, key_id), now) = (path.into_inner(), state.clock.now());
    let resolve = presets.clone();
    let changed = services::write(&state, move |conn| {
        mcp::toggle_project_key(
            conn,
            &caller,
            &project_id,
            &key_id,
            body.active,
            &resolve,
            now,
        )
    })
    .await?;
    tracing::info!(key_id = %changed.key.id, active = changed.key.mcp.active, "project key MCP access toggled");
    Ok(HttpResponse::Ok().json(ProjectApiKeyJson::new(changed, &state.usage, &presets)))
}

// Forward auth's MCP check (see `routes::forward_auth`).

/// The headers a gateway sets to ask an MCP check, and the query parameters of the same
/// names (`mcp_instance`, ...).
/// (Header names made once: a plain check looks each up, and finds none.)
const ASKED: [(&str, HeaderName); 4] = [
    ("mcp_instance", HeaderName::from_static("x-mcp-instance")),
    ("mcp_project", HeaderName::from_static("x-mcp-project")),
    ("mcp_tool", HeaderName::from_static("x-mcp-tool")),
    ("mcp_read_only", HeaderName::from_static("x-mcp-read-only")),
];

/// What a forward-auth request asks of the key's MCP policy.
#[derive(Debug)]
pub struct McpAsked {
    instance: Option<String>,
    project: Option<String>,
    tool: Option<String>,
    read_only: Option<bool>,
}

impl McpAsked {
    /// The MCP check a forward-auth request asks for: `None` when it names no `mcp_*` query
    /// parameter and no `X-Mcp-*` header (the check is then exactly as without MCP). `query`
    /// is `None` where the query string is the original request's (`/forward-auth/{path}`).
    /// A value given twice, empty, malformed, or given as both a parameter and a header that
    /// disagree is refused (400): a gateway's template that came out wrong must not pass.
    pub fn from_request(
        req: &actix_web::HttpRequest,
        mut query: Option<&mut crate::extract::QueryParams>,
    ) -> Result<Option<Self>, ApiError> {
        // Every forward-auth check asks this; almost all name nothing of MCP. One pass over
        // the parameters and the header names says so, before eight lookups would.
        let in_query = query
            .as_deref()
            .is_some_and(|q| q.has_name_starting_with("mcp_"));
        if !in_query
            && !req
                .headers()
                .keys()
                .any(|name| name.as_str().starts_with("x-mcp-"))
        {
            return Ok(None);
        }
        let mut values: [Option<String>; 4] = Default::default();
        for (slot, (param, header)) in values.iter_mut().zip(ASKED) {
            let mut given = query
                .as_deref_mut()
                .map(|q| q.take_each(param))
                .unwrap_or_default();
            for value in req.headers().get_all(&header) {
                given.push(
                    value
                        .to_str()
                        .map_err(|_| invalid_mcp(param))?
                        .trim()
                        .to_owned(),
                );
            }
            given.dedup();
            match given.as_slice() {
                [] => {}
                [one] if !one.is_empty() => *slot = Some(one.clone()),
                [_] => return Err(invalid_mcp(param)),
                _ => return Err(ambiguous_mcp(param)),
            }
        }
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let [instance, project, tool, read_only] = values;
        for (value, (param, _)) in [&instance, &project, &tool].into_iter().zip(ASKED) {
            if value
                .as_deref()
                .is_some_and(|v| !crate::domain::mcp::is_valid_name(v))
            {
                return Err(invalid_mcp(param));
            }
        }
        let read_only = match read_only.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(invalid_mcp("mcp_read_only")),
        };
        Ok(Some(Self {
            instance,
            project,
            tool,
            read_only,
        }))
    }

    /// The call to check: the gateway's tool and those a forwarded JSON-RPC body calls
    /// (`body`: `None` when it was too large to read), which must agree.
    pub fn call(self, body: Option<&[u8]>) -> Result<crate::domain::mcp::McpCall, ApiError> {
        use crate::domain::mcp::{BodyTools, tools_in_body};
        let mut tools = match body.map(tools_in_body) {
            Some(BodyTools::Named(tools)) => tools,
            Some(BodyTools::Ambiguous) => return Err(ambiguous_mcp("mcp_tool")),
            None if self.tool.is_some() => Vec::new(),
            None => {
                return Err(ApiError::InvalidRequest {
                    message: format!(
                        "The forwarded body is larger than {} bytes, so the tool it calls cannot \
                         be told; have the gateway name it with `X-Mcp-Tool` or `mcp_tool`.",
                        crate::domain::model::MAX_BODY_SCAN_BYTES
                    ),
                    param: None,
                    code: Some("mcp_tool_unreadable"),
                });
            }
        };
        if let Some(named) = self.tool {
            if tools.iter().any(|t| *t != named) {
                return Err(ambiguous_mcp("mcp_tool"));
            }
            tools = vec![named];
        }
        tools.dedup();
        if tools.iter().any(|t| !crate::domain::mcp::is_valid_name(t)) {
            return Err(invalid_mcp("mcp_tool"));
        }
        Ok(crate::domain::mcp::McpCall {
            instance: self.instance,
            project: self.project,
            tools,
            read_only: self.read_only,
        })
    }
}

/// 403 naming what the key's (effective) policy refuses of `call`.
pub fn check(policy: &McpPolicy, call: &crate::domain::mcp::McpCall) -> Result<(), ApiError> {
    policy.check(call).map_err(|refusal| ApiError::Forbidden {
        message: refusal.message().to_owned(),
        code: refusal.code().to_owned(),
    })
}

fn invalid_mcp(param: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "`{param}` (or its `X-Mcp-*` header) must be given once: an id or tool name of 1 to \
             {MAX_MCP_ENTRY_CHARS} letters, digits and `_ . : / -` (`mcp_read_only`: `true` or \
             `false`)."
        ),
        param: Some(param.to_owned()),
        code: Some("invalid_mcp_parameter"),
    }
}

fn ambiguous_mcp(param: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: format!(
            "The request names more than one value for `{param}` (the query, the `X-Mcp-*` \
             header and the forwarded body disagree, or one is given twice); name one."
        ),
        param: Some(param.to_owned()),
        code: Some("ambiguous_mcp_parameter"),
    }
}

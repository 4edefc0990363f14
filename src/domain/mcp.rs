//! MCP access control: what a key may do on Model Context Protocol servers (seed 002's
//! `mcpActive`, `mcpInstanceIds`, `mcpProjectIds`, `mcpAllowlistMode`, `mcpToolAllowlist`,
//! `mcpReadOnly`, `mcpPermissions`, `mcpPreset`).
//!
//! Policy:
//! - Every key has one [`McpPolicy`]. `active: false` (paused) refuses every MCP check and
//!   changes nothing else about the key. `instance_ids` and `project_ids` name the MCP server
//!   instances and projects the key may reach; empty means any. `allowlist_mode` `all` allows
//!   every tool; `allowlist` only those `tool_allowlist` covers (a trailing `*` makes a prefix
//!   pattern, as permissions do). `read_only` allows only tools the MCP server marks read-only
//!   (`readOnlyHint: true`). `permissions` are free-form strings for the MCP server's own
//!   checks, covered as key permissions are.
//! - `preset` names a policy from the settings (`MCP_PRESETS`, see [`McpPresets`]). It is
//!   stored by name and resolved whenever the key is read or checked: the fields the preset
//!   sets win over the key's own, so changing a preset changes every key that uses it, on the
//!   next cache fill (at most `AUTH_CACHE_TTL_SECS` later; at once after a restart). A preset
//!   that is no longer configured resolves to a policy that allows no tool (fail closed).
//! - No escalation: a caller grants only what its own effective policy covers ([`McpPolicy::
//!   first_uncovered`]). A paused caller cannot grant an active policy.
//! - Stored as compact JSON in a `TEXT` column (`mcp`), defaults left out, so `{}` is the
//!   policy every key had before this existed: active, every instance, project and tool.

use std::collections::BTreeMap;
use std::sync::Arc;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};

use super::Invalid;
use super::permissions::{self, MAX_PERMISSIONS, Permissions};
use crate::db::MultiBackend;

/// The most instance ids, project ids or tool patterns one policy names.
pub const MAX_MCP_ENTRIES: usize = 64;
/// The longest instance id, project id or tool name, in characters.
pub const MAX_MCP_ENTRY_CHARS: usize = 128;
/// The longest preset name, in characters.
pub const MAX_PRESET_CHARS: usize = 64;

/// Which tools a policy allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowlistMode {
    /// Every tool.
    #[default]
    All,
    /// Only the tools `tool_allowlist` covers.
    Allowlist,
}

impl AllowlistMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Allowlist => "allowlist",
        }
    }
}

/// A key's MCP policy: as stored (with its preset's name), or effective (the preset resolved,
/// see [`McpPolicy::effective`]).
#[derive(Clone, Debug, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct McpPolicy {
    pub active: bool,
    pub preset: Option<String>,
    /// Sorted, without repeats; empty: any.
    pub instance_ids: Arc<[String]>,
    /// Sorted, without repeats; empty: any.
    pub project_ids: Arc<[String]>,
    pub allowlist_mode: AllowlistMode,
    pub tool_allowlist: Permissions,
    pub read_only: bool,
    pub permissions: Permissions,
}

impl Default for McpPolicy {
    /// Active, and every instance, project and tool: what a key without a policy of its own
    /// (one made before MCP access control, or by an operator) has.
    fn default() -> Self {
        Self {
            active: true,
            preset: None,
            instance_ids: Arc::from(Vec::new()),
            project_ids: Arc::from(Vec::new()),
            allowlist_mode: AllowlistMode::All,
            tool_allowlist: Permissions::default(),
            read_only: false,
            permissions: Permissions::default(),
        }
    }
}

/// What a gateway or MCP server asks of a key: may it reach `instance` of `project` and call
/// `tool`, which is (or is not) read-only? Each part is optional; what is not named is not
/// checked (but see `read_only` in [`McpPolicy::check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct McpCall {
    pub instance: Option<String>,
    pub project: Option<String>,
    /// The tools called (a batch may call several; usually one).
    pub tools: Vec<String>,
    /// Whether the tool called is read-only, as the MCP server marks it; `None`: unknown.
    pub read_only: Option<bool>,
}

/// Why an MCP check refused a key; each is a 403 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpRefusal {
    Paused,
    InstanceNotAllowed,
    ProjectNotAllowed,
    ToolNotAllowed,
    ReadOnly,
}

impl McpRefusal {
    /// The error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Paused => "mcp_paused",
            Self::InstanceNotAllowed => "mcp_instance_not_allowed",
            Self::ProjectNotAllowed => "mcp_project_not_allowed",
            Self::ToolNotAllowed => "mcp_tool_not_allowed",
            Self::ReadOnly => "mcp_read_only",
        }
    }

    /// What to tell the client, in our words.
    pub fn message(self) -> &'static str {
        match self {
            Self::Paused => "MCP access is paused for this key.",
            Self::InstanceNotAllowed => "This key may not reach this MCP server instance.",
            Self::ProjectNotAllowed => "This key may not reach MCP servers of this project.",
            Self::ToolNotAllowed => "This key may not call this tool.",
            Self::ReadOnly => {
                "This key may call only read-only tools, and this tool is not known to be one."
            }
        }
    }
}

impl McpPolicy {
    /// Every MCP access and every MCP permission (`*`): what an operator holds and what
    /// `bootstrap` gives, so that someone can hand out MCP permissions.
    pub fn everything() -> Self {
        Self {
            permissions: Permissions::all(),
            ..Self::default()
        }
    }

    /// Whether this is the default policy (left out of audit details).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The policy with its preset resolved: each field the preset sets replaces the key's own.
    /// An unknown preset allows no tool (the key's other fields stay).
    pub fn effective(&self, presets: &McpPresets) -> McpPolicy {
        let Some(name) = &self.preset else {
            return self.clone();
        };
        let mut out = self.clone();
        let Some(preset) = presets.get(name) else {
            out.allowlist_mode = AllowlistMode::Allowlist;
            out.tool_allowlist = Permissions::default();
            return out;
        };
        if let Some(ids) = &preset.instance_ids {
            out.instance_ids = Arc::clone(ids);
        }
        if let Some(ids) = &preset.project_ids {
            out.project_ids = Arc::clone(ids);
        }
        if let Some((mode, tools)) = &preset.tools {
            out.allowlist_mode = *mode;
            out.tool_allowlist = tools.clone();
        }
        if let Some(read_only) = preset.read_only {
            out.read_only = read_only;
        }
        if let Some(permissions) = &preset.permissions {
            out.permissions = permissions.clone();
        }
        out
    }

    /// Whether this (effective) policy lets `tool` be called, `read_only` saying whether the
    /// server marks it read-only.
    pub fn allows_tool(&self, tool: &str, read_only: bool) -> bool {
        (self.allowlist_mode == AllowlistMode::All || self.tool_allowlist.covers(tool))
            && (read_only || !self.read_only)
    }

    /// Checks `call` against this (effective) policy, in a fixed order: paused, instance,
    /// project, tool, read-only. A read-only policy refuses a tool not vouched read-only
    /// (`read_only` not `Some(true)`), and any call the gateway says is not read-only.
    pub fn check(&self, call: &McpCall) -> Result<(), McpRefusal> {
        if !self.active {
            return Err(McpRefusal::Paused);
        }
        let listed = |ids: &[String], id: &Option<String>| {
            ids.is_empty() || id.as_ref().is_some_and(|id| ids.iter().any(|i| i == id))
        };
        if !listed(&self.instance_ids, &call.instance) {
            return Err(McpRefusal::InstanceNotAllowed);
        }
        if !listed(&self.project_ids, &call.project) {
            return Err(McpRefusal::ProjectNotAllowed);
        }
        if self.allowlist_mode == AllowlistMode::Allowlist
            && !call.tools.iter().all(|t| self.tool_allowlist.covers(t))
        {
            return Err(McpRefusal::ToolNotAllowed);
        }
        if self.read_only
            && (call.read_only == Some(false)
                || (!call.tools.is_empty() && call.read_only.is_none()))
        {
            return Err(McpRefusal::ReadOnly);
        }
        Ok(())
    }

    /// The first field of `granted` (an effective policy) that this (the caller's effective
    /// policy) does not cover, by name; `None` when it covers all of it. Covering means:
    /// an active policy covers either state, a paused one only paused; an empty id list
    /// covers any list, a list only non-empty lists within it; `all` covers any tool
    /// allowlist, an allowlist only allowlists whose patterns it covers; a read-only policy
    /// only read-only ones; permissions as key permissions.
    pub fn first_uncovered(&self, granted: &McpPolicy) -> Option<&'static str> {
        let ids_cover = |held: &[String], wanted: &[String]| {
            held.is_empty()
                || (!wanted.is_empty() && wanted.iter().all(|w| held.iter().any(|h| h == w)))
        };
        if granted.active && !self.active {
            Some("active")
        } else if !ids_cover(&self.instance_ids, &granted.instance_ids) {
            Some("instance_ids")
        } else if !ids_cover(&self.project_ids, &granted.project_ids) {
            Some("project_ids")
        } else if self.allowlist_mode == AllowlistMode::Allowlist
            && (granted.allowlist_mode == AllowlistMode::All
                || self
                    .tool_allowlist
                    .first_uncovered(&granted.tool_allowlist)
                    .is_some())
        {
            Some("tool_allowlist")
        } else if self.read_only && !granted.read_only {
            Some("read_only")
        } else if self
            .permissions
            .first_uncovered(&granted.permissions)
            .is_some()
        {
            Some("permissions")
        } else {
            None
        }
    }

    /// The stored form: compact JSON, defaults left out.
    pub fn to_db(&self) -> String {
        serde_json::to_string(&Stored::from(self)).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Reads the stored form.
    pub fn from_db(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Stored>(stored).map(Self::from)
    }
}

/// Every field, as key objects and audit details show a policy.
impl Serialize for McpPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("McpPolicy", 8)?;
        out.serialize_field("active", &self.active)?;
        out.serialize_field("preset", &self.preset)?;
        out.serialize_field("instance_ids", &*self.instance_ids)?;
        out.serialize_field("project_ids", &*self.project_ids)?;
        out.serialize_field("allowlist_mode", &self.allowlist_mode)?;
        out.serialize_field("tool_allowlist", &self.tool_allowlist)?;
        out.serialize_field("read_only", &self.read_only)?;
        out.serialize_field("permissions", &self.permissions)?;
        out.end()
    }
}

/// The stored JSON: every field optional, defaults left out.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    #[serde(skip_serializing_if = "is_true")]
    active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preset: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    instance_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    project_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowlist_mode: Option<AllowlistMode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_allowlist: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    permissions: Vec<String>,
}

fn is_true(active: &Option<bool>) -> bool {
    active.is_none_or(|a| a)
}

impl From<&McpPolicy> for Stored {
    fn from(p: &McpPolicy) -> Self {
        Self {
            active: (!p.active).then_some(false),
            preset: p.preset.clone(),
            instance_ids: p.instance_ids.to_vec(),
            project_ids: p.project_ids.to_vec(),
            allowlist_mode: (p.allowlist_mode != AllowlistMode::All).then_some(p.allowlist_mode),
            tool_allowlist: p.tool_allowlist.iter().map(str::to_owned).collect(),
            read_only: p.read_only,
            permissions: p.permissions.iter().map(str::to_owned).collect(),
        }
    }
}

impl From<Stored> for McpPolicy {
    fn from(s: Stored) -> Self {
        Self {
            active: s.active.unwrap_or(true),
            preset: s.preset,
            instance_ids: sorted(s.instance_ids),
            project_ids: sorted(s.project_ids),
            allowlist_mode: s.allowlist_mode.unwrap_or_default(),
            tool_allowlist: s.tool_allowlist.into_iter().collect(),
            read_only: s.read_only,
            permissions: s.permissions.into_iter().collect(),
        }
    }
}

fn sorted(mut ids: Vec<String>) -> Arc<[String]> {
    ids.sort();
    ids.dedup();
    Arc::from(ids)
}

/// A change to a policy, each field optional (left out: kept), validated at the edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct McpChange {
    pub active: Option<bool>,
    /// `Some(None)` clears the preset.
    pub preset: Option<Option<String>>,
    pub instance_ids: Option<Arc<[String]>>,
    pub project_ids: Option<Arc<[String]>>,
    pub allowlist_mode: Option<AllowlistMode>,
    pub tool_allowlist: Option<Permissions>,
    pub read_only: Option<bool>,
    pub permissions: Option<Permissions>,
}

/// What a create or update asks of a key's MCP policy (`None`: nothing), with the presets
/// that resolve policies for the no-escalation check.
#[derive(Clone, Debug, Default)]
pub struct McpRequest {
    pub change: Option<McpChange>,
    pub presets: McpPresets,
}

/// The raw fields of a change, as a request sends them (types already checked).
#[derive(Clone, Debug, Default)]
pub struct McpChangeInput {
    pub active: Option<bool>,
    pub preset: Option<Option<String>>,
    pub instance_ids: Option<Vec<String>>,
    pub project_ids: Option<Vec<String>>,
    pub allowlist_mode: Option<AllowlistMode>,
    pub tool_allowlist: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub permissions: Option<Vec<String>>,
}

impl McpChange {
    /// Checks a request's `mcp` object: bounded lists of well-formed entries, a configured
    /// preset, and no field that the same request's preset sets (which would be overridden).
    pub fn parse(input: McpChangeInput, presets: &McpPresets) -> Result<Self, Invalid> {
        let ids = |param: &'static str, raw: Option<Vec<String>>| {
            raw.map(|raw| parse_entries(param, &raw, false).map(sorted))
                .transpose()
        };
        let preset = match input.preset {
            Some(Some(name)) => {
                if !presets.contains(&name) {
                    return Err(Invalid::new(
                        "mcp.preset",
                        format!(
                            "`mcp.preset` must name a configured preset ({}), or be null.",
                            presets.names()
                        ),
                    ));
                }
                Some(Some(name))
            }
            other => other,
        };
        let change = Self {
            active: input.active,
            instance_ids: ids("mcp.instance_ids", input.instance_ids)?,
            project_ids: ids("mcp.project_ids", input.project_ids)?,
            allowlist_mode: input.allowlist_mode,
            tool_allowlist: input
                .tool_allowlist
                .map(|raw| {
                    parse_entries("mcp.tool_allowlist", &raw, true)
                        .map(|tools| tools.into_iter().collect())
                })
                .transpose()?,
            read_only: input.read_only,
            permissions: input
                .permissions
                .map(|raw| Permissions::parse("mcp.permissions", &raw))
                .transpose()?,
            preset,
        };
        if let Some(Some(name)) = &change.preset
            && let Some(preset) = presets.get(name)
            && let Some(field) = preset.overlap(&change)
        {
            return Err(Invalid::new(
                field,
                format!(
                    "`{field}` is set by the preset `{name}` given with it; leave the field out \
                     or choose no preset."
                ),
            ));
        }
        Ok(change)
    }

    /// Whether this change only pauses (asks for nothing a caller must cover).
    pub fn only_pauses(&self) -> bool {
        *self
            == Self {
                active: Some(false),
                ..Self::default()
            }
    }

    /// `base` with this change applied. A `tool_allowlist` given without `allowlist_mode`
    /// switches the mode to `allowlist` (a list given is meant to restrict).
    pub fn apply(&self, base: &McpPolicy) -> McpPolicy {
        let mut out = base.clone();
        if let Some(active) = self.active {
            out.active = active;
        }
        if let Some(preset) = &self.preset {
            out.preset = preset.clone();
        }
        if let Some(ids) = &self.instance_ids {
            out.instance_ids = Arc::clone(ids);
        }
        if let Some(ids) = &self.project_ids {
            out.project_ids = Arc::clone(ids);
        }
        if let Some(tools) = &self.tool_allowlist {
            out.tool_allowlist = tools.clone();
            out.allowlist_mode = AllowlistMode::Allowlist;
        }
        if let Some(mode) = self.allowlist_mode {
            out.allowlist_mode = mode;
        }
        if let Some(read_only) = self.read_only {
            out.read_only = read_only;
        }
        if let Some(permissions) = &self.permissions {
            out.permissions = permissions.clone();
        }
        out
    }
}

/// Checks a list of ids (or, with `patterns`, tool patterns): at most [`MAX_MCP_ENTRIES`],
/// each 1 to [`MAX_MCP_ENTRY_CHARS`] letters, digits and `_ . : / -` (patterns may end in
/// `*`). Errors name the entry by index, never by value.
fn parse_entries(
    param: &'static str,
    raw: &[String],
    patterns: bool,
) -> Result<Vec<String>, Invalid> {
    if raw.len() > MAX_MCP_ENTRIES {
        return Err(Invalid::new(
            param,
            format!("`{param}` holds at most {MAX_MCP_ENTRIES} entries."),
        ));
    }
    for (n, entry) in raw.iter().enumerate() {
        let ok = if patterns {
            is_valid_tool_pattern(entry)
        } else {
            is_valid_name(entry)
        };
        if !ok {
            let star = if patterns {
                ", optionally ending in `*` (a prefix pattern)"
            } else {
                ""
            };
            return Err(Invalid::new(
                param,
                format!(
                    "`{param}[{n}]` must be 1 to {MAX_MCP_ENTRY_CHARS} characters of letters, \
                     digits and `_ . : / -`{star}."
                ),
            ));
        }
    }
    Ok(raw.to_vec())
}

/// Whether `name` is a well-formed instance id, project id or tool name.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_MCP_ENTRY_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
}

/// Whether `pattern` is a tool name, or a prefix of one followed by `*` (`*` alone: any).
pub fn is_valid_tool_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => is_valid_name(prefix),
        None => is_valid_name(pattern),
    }
}

/// What a forwarded MCP request body says about the tools it calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyTools {
    /// The `params.name` of each JSON-RPC `tools/call` in the body (none: it calls no tool,
    /// or is not JSON at all, which the MCP server refuses itself).
    Named(Vec<String>),
    /// JSON that cannot be read as JSON-RPC messages with one string `params.name` per
    /// `tools/call` (a member given twice, a name that is not a string): servers may read it
    /// differently, so it is refused.
    Ambiguous,
}

/// One JSON-RPC message, as far as the check needs it. Derived, so a member given twice is
/// an error rather than a guess.
#[derive(Deserialize)]
struct RpcMessage {
    #[serde(default)]
    method: Option<serde_json::Value>,
    #[serde(default)]
    params: Option<RpcParams>,
}

#[derive(Deserialize)]
struct RpcParams {
    #[serde(default)]
    name: Option<serde_json::Value>,
}

/// The tools a forwarded JSON-RPC body (one message or a batch) calls.
pub fn tools_in_body(body: &[u8]) -> BodyTools {
    if body.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
    {
        return BodyTools::Named(Vec::new());
    }
    let messages = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(_)) => serde_json::from_slice::<Vec<RpcMessage>>(body),
        _ => serde_json::from_slice::<RpcMessage>(body).map(|one| vec![one]),
    };
    let Ok(messages) = messages else {
        return BodyTools::Ambiguous;
    };
    let mut tools = Vec::new();
    for message in messages {
        if message.method.as_ref().and_then(|m| m.as_str()) != Some("tools/call") {
            continue;
        }
        match message.params.and_then(|p| p.name) {
            Some(serde_json::Value::String(name)) => tools.push(name),
            _ => return BodyTools::Ambiguous,
        }
    }
    BodyTools::Named(tools)
}

/// A named policy from the settings: the fields it sets (the others stay each key's own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preset {
    pub instance_ids: Option<Arc<[String]>>,
    pub project_ids: Option<Arc<[String]>>,
    pub tools: Option<(AllowlistMode, Permissions)>,
    pub read_only: Option<bool>,
    pub permissions: Option<Permissions>,
}

impl Preset {
    /// The first field of `change` that this preset sets, as a request parameter.
    fn overlap(&self, change: &McpChange) -> Option<&'static str> {
        if self.instance_ids.is_some() && change.instance_ids.is_some() {
            Some("mcp.instance_ids")
        } else if self.project_ids.is_some() && change.project_ids.is_some() {
            Some("mcp.project_ids")
        } else if self.tools.is_some() && change.allowlist_mode.is_some() {
            Some("mcp.allowlist_mode")
        } else if self.tools.is_some() && change.tool_allowlist.is_some() {
            Some("mcp.tool_allowlist")
        } else if self.read_only.is_some() && change.read_only.is_some() {
            Some("mcp.read_only")
        } else if self.permissions.is_some() && change.permissions.is_some() {
            Some("mcp.permissions")
        } else {
            None
        }
    }
}

/// The presets keys may name (`MCP_PRESETS`): two built in, `read_only` (only read-only
/// tools) and `full` (every tool, writing ones included), which the setting may redefine.
///
/// The setting is entries separated by `;`, each a name (letters, digits, `_ -`) followed by
/// `field=value` pairs: `tools=*` (every tool) or `tools=a,b*` (an allowlist), `read_only=
/// true|false`, `instances=…`, `projects=…` (comma-separated ids, `*` for any) and
/// `permissions=…` (comma-separated). E.g. `support tools=search*,get_* read_only=true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpPresets(Arc<BTreeMap<String, Preset>>);

impl Default for McpPresets {
    fn default() -> Self {
        Self(Arc::new(Self::built_in()))
    }
}

impl McpPresets {
    fn built_in() -> BTreeMap<String, Preset> {
        let every_tool = Some((AllowlistMode::All, Permissions::default()));
        BTreeMap::from([
            (
                "read_only".to_owned(),
                Preset {
                    tools: every_tool.clone(),
                    read_only: Some(true),
                    ..Preset::default()
                },
            ),
            (
                "full".to_owned(),
                Preset {
                    tools: every_tool,
                    read_only: Some(false),
                    ..Preset::default()
                },
            ),
        ])
    }

    pub fn get(&self, name: &str) -> Option<&Preset> {
        self.0.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The names, quoted and comma-separated, for messages.
    pub fn names(&self) -> String {
        let names: Vec<String> = self.0.keys().map(|n| format!("`{n}`")).collect();
        names.join(", ")
    }

    /// Reads the setting (see the type's documentation); the built-in presets stay unless
    /// redefined.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut presets = Self::built_in();
        for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let mut words = entry.split_whitespace();
            let name = words.next().unwrap_or_default();
            let name_ok = (1..=MAX_PRESET_CHARS).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
            if !name_ok {
                return Err(format!(
                    "an MCP preset's name must be 1 to {MAX_PRESET_CHARS} letters, digits, `_` \
                     or `-`"
                ));
            }
            let mut preset = Preset::default();
            for pair in words {
                let (field, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("preset `{name}`: expected `field=value`"))?;
                let list = |value: &str| -> Vec<String> {
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                let bad = |what: &str| format!("preset `{name}`: `{field}` must be {what}");
                match field {
                    "tools" if value == "*" => {
                        preset.tools = Some((AllowlistMode::All, Permissions::default()));
                    }
                    "tools" => {
                        let tools = parse_entries("tools", &list(value), true)
                            .map_err(|_| bad("`*` or tool names and patterns"))?;
                        preset.tools =
                            Some((AllowlistMode::Allowlist, tools.into_iter().collect()));
                    }
                    "read_only" => {
                        preset.read_only =
                            Some(value.parse().map_err(|_| bad("`true` or `false`"))?);
                    }
                    "instances" | "projects" => {
                        let ids = if value == "*" {
                            Vec::new()
                        } else {
                            parse_entries("ids", &list(value), false)
                                .map_err(|_| bad("`*` or ids"))?
                        };
                        let ids = Some(sorted(ids));
                        if field == "instances" {
                            preset.instance_ids = ids;
                        } else {
                            preset.project_ids = ids;
                        }
                    }
                    "permissions" => {
                        let raw = list(value);
                        if raw.len() > MAX_PERMISSIONS
                            || !raw.iter().all(|p| permissions::is_valid(p))
                        {
                            return Err(bad("permissions"));
                        }
                        preset.permissions = Some(raw.into_iter().collect());
                    }
                    _ => {
                        return Err(format!(
                            "preset `{name}`: unknown field (use tools, read_only, instances, \
                             projects or permissions)"
                        ));
                    }
                }
            }
            presets.insert(name.to_owned(), preset);
        }
        Ok(Self(Arc::new(presets)))
    }
}

impl std::str::FromStr for McpPresets {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }
}

// TEXT on both backends, as `Permissions` (see there).
impl ToSql<Text, Pg> for McpPolicy {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        use std::io::Write;
        out.write_all(self.to_db().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl ToSql<Text, Sqlite> for McpPolicy {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_db());
        Ok(IsNull::No)
    }
}

impl ToSql<Text, MultiBackend> for McpPolicy {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

impl<DB> FromSql<Text, DB> for McpPolicy
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(McpPolicy::from_db(&String::from_sql(bytes)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn change(input: McpChangeInput) -> McpChange {
        McpChange::parse(input, &McpPresets::default()).unwrap()
    }

    fn call(tool: &str, read_only: Option<bool>) -> McpCall {
        McpCall {
            tools: vec![tool.to_owned()],
            read_only,
            ..McpCall::default()
        }
    }

    #[test]
    fn the_default_policy_is_stored_as_an_empty_object_and_round_trips() {
        assert_eq!(McpPolicy::default().to_db(), "{}");
        assert_eq!(McpPolicy::from_db("{}").unwrap(), McpPolicy::default());
        let p = change(McpChangeInput {
            active: Some(false),
            preset: Some(Some("read_only".into())),
            instance_ids: Some(list(&["b", "a", "b"])),
            permissions: Some(list(&["x"])),
            ..Default::default()
        })
        .apply(&McpPolicy::default());
        let p = change(McpChangeInput {
            tool_allowlist: Some(list(&["search*"])),
            ..Default::default()
        })
        .apply(&p);
        assert_eq!(&*p.instance_ids, &list(&["a", "b"])[..]);
        assert_eq!(p.allowlist_mode, AllowlistMode::Allowlist);
        assert_eq!(McpPolicy::from_db(&p.to_db()).unwrap(), p);
    }

    #[test]
    fn a_paused_key_is_refused_before_anything_else() {
        let p = McpPolicy {
            active: false,
            ..McpPolicy::default()
        };
        assert_eq!(p.check(&McpCall::default()), Err(McpRefusal::Paused));
    }

    #[test]
    fn instances_projects_and_tools_are_checked_against_their_lists() {
        let p = change(McpChangeInput {
            instance_ids: Some(list(&["docs"])),
            project_ids: Some(list(&["proj_1"])),
            tool_allowlist: Some(list(&["search*", "get_page"])),
            ..Default::default()
        })
        .apply(&McpPolicy::default());
        let at = |instance: &str, project: &str, tool: &str| McpCall {
            instance: Some(instance.into()),
            project: Some(project.into()),
            tools: vec![tool.into()],
            read_only: None,
        };
        assert_eq!(p.check(&at("docs", "proj_1", "search_all")), Ok(()));
        assert_eq!(p.check(&at("docs", "proj_1", "get_page")), Ok(()));
        assert_eq!(
            p.check(&at("wiki", "proj_1", "get_page")),
            Err(McpRefusal::InstanceNotAllowed)
        );
        assert_eq!(
            p.check(&at("docs", "proj_2", "get_page")),
            Err(McpRefusal::ProjectNotAllowed)
        );
        assert_eq!(
            p.check(&at("docs", "proj_1", "delete_page")),
            Err(McpRefusal::ToolNotAllowed)
        );
        assert_eq!(
            p.check(&McpCall::default()),
            Err(McpRefusal::InstanceNotAllowed),
            "a restricted list needs the gateway to name the instance"
        );
        assert!(McpPolicy::default().check(&at("x", "y", "z")).is_ok());
    }

    #[test]
    fn a_read_only_key_calls_only_tools_vouched_read_only() {
        let p = McpPolicy {
            read_only: true,
            ..McpPolicy::default()
        };
        assert_eq!(p.check(&call("search", Some(true))), Ok(()));
        assert_eq!(
            p.check(&call("write", Some(false))),
            Err(McpRefusal::ReadOnly)
        );
        assert_eq!(p.check(&call("write", None)), Err(McpRefusal::ReadOnly));
        assert_eq!(p.check(&McpCall::default()), Ok(()), "no tool is called");
        assert!(p.allows_tool("search", true));
        assert!(!p.allows_tool("write", false));
    }

    #[test]
    fn presets_fill_the_fields_they_set_and_an_unknown_one_allows_no_tool() {
        let presets = McpPresets::parse("support tools=search* read_only=true").unwrap();
        let key = McpPolicy {
            preset: Some("support".into()),
            instance_ids: sorted(list(&["docs"])),
            ..McpPolicy::default()
        };
        let effective = key.effective(&presets);
        assert_eq!(effective.allowlist_mode, AllowlistMode::Allowlist);
        assert!(effective.read_only);
        assert_eq!(&*effective.instance_ids, &list(&["docs"])[..]);
        let changed = McpPresets::parse("support tools=*").unwrap();
        assert!(
            !key.effective(&changed).read_only,
            "changing the preset changes the key"
        );
        let gone = key.effective(&McpPresets::default());
        let at_docs = McpCall {
            instance: Some("docs".into()),
            ..call("search", Some(true))
        };
        assert_eq!(gone.check(&at_docs), Err(McpRefusal::ToolNotAllowed));
        assert!(McpPresets::default().get("read_only").is_some());
        assert!(McpPresets::parse("full read_only=maybe").is_err());
        assert!(McpPresets::parse("bad name tools=*").is_err());
        assert!(McpPresets::parse("x colour=red").is_err());
    }

    #[test]
    fn a_request_may_not_set_a_field_its_preset_sets() {
        let err = McpChange::parse(
            McpChangeInput {
                preset: Some(Some("read_only".into())),
                read_only: Some(false),
                ..Default::default()
            },
            &McpPresets::default(),
        )
        .unwrap_err();
        assert_eq!(err.param, "mcp.read_only");
        let err = McpChange::parse(
            McpChangeInput {
                preset: Some(Some("nope".into())),
                ..Default::default()
            },
            &McpPresets::default(),
        )
        .unwrap_err();
        assert_eq!(err.param, "mcp.preset");
    }

    #[test]
    fn entries_are_bounded_and_shaped_and_errors_never_repeat_them() {
        let many: Vec<String> = (0..65).map(|n| format!("i{n}")).collect();
        let input = |ids: Vec<String>| McpChangeInput {
            instance_ids: Some(ids),
            ..Default::default()
        };
        assert!(McpChange::parse(input(many), &McpPresets::default()).is_err());
        let err =
            McpChange::parse(input(list(&["ok", "not ok"])), &McpPresets::default()).unwrap_err();
        assert_eq!(err.param, "mcp.instance_ids");
        assert!(err.message.contains("[1]") && !err.message.contains("not ok"));
        assert!(is_valid_tool_pattern("*") && is_valid_tool_pattern("a.b*"));
        assert!(!is_valid_tool_pattern("a*b") && !is_valid_name("a*"));
    }

    #[test]
    fn the_tools_a_json_rpc_body_calls_are_read_and_odd_ones_refused() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}"#;
        assert_eq!(tools_in_body(call), BodyTools::Named(list(&["search"])));
        let batch = br#"[{"method":"tools/call","params":{"name":"a"}},{"method":"tools/list"}]"#;
        assert_eq!(tools_in_body(batch), BodyTools::Named(list(&["a"])));
        for none in [
            &b""[..],
            b"not json",
            br#"{"method":"tools/list"}"#,
            br#"{"method":"initialize","params":{"capabilities":{}}}"#,
        ] {
            assert_eq!(
                tools_in_body(none),
                BodyTools::Named(vec![]),
                "{}",
                String::from_utf8_lossy(none)
            );
        }
        for odd in [
            &br#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#[..],
            br#"{"method":"tools/call","params":{"name":7}}"#,
            br#"{"method":"tools/call"}"#,
            br#"{"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#,
        ] {
            assert_eq!(
                tools_in_body(odd),
                BodyTools::Ambiguous,
                "{}",
                String::from_utf8_lossy(odd)
            );
        }
    }

    #[test]
    fn a_caller_covers_only_policies_within_its_own() {
        let caller = change(McpChangeInput {
            instance_ids: Some(list(&["a", "b"])),
            tool_allowlist: Some(list(&["search*"])),
            read_only: Some(true),
            permissions: Some(list(&["docs:*"])),
            ..Default::default()
        })
        .apply(&McpPolicy::default());
        assert_eq!(caller.first_uncovered(&caller), None);
        let narrower = change(McpChangeInput {
            instance_ids: Some(list(&["a"])),
            tool_allowlist: Some(list(&["search_docs"])),
            permissions: Some(list(&["docs:read"])),
            ..Default::default()
        })
        .apply(&caller);
        assert_eq!(caller.first_uncovered(&narrower), None);
        let wider = |c: McpChangeInput| caller.first_uncovered(&change(c).apply(&caller));
        assert_eq!(
            wider(McpChangeInput {
                instance_ids: Some(vec![]),
                ..Default::default()
            }),
            Some("instance_ids"),
            "any instance is wider than a list"
        );
        assert_eq!(
            wider(McpChangeInput {
                allowlist_mode: Some(AllowlistMode::All),
                ..Default::default()
            }),
            Some("tool_allowlist")
        );
        assert_eq!(
            wider(McpChangeInput {
                read_only: Some(false),
                ..Default::default()
            }),
            Some("read_only")
        );
        assert_eq!(
            wider(McpChangeInput {
                permissions: Some(list(&["ops"])),
                ..Default::default()
            }),
            Some("permissions")
        );
        let paused = McpPolicy {
            active: false,
            ..McpPolicy::default()
        };
        assert_eq!(
            paused.first_uncovered(&McpPolicy::default()),
            Some("active")
        );
        assert_eq!(paused.first_uncovered(&paused), None);
        assert_eq!(McpPolicy::everything().first_uncovered(&caller), None);
        assert_eq!(
            McpPolicy::default().first_uncovered(&caller),
            Some("permissions"),
            "MCP permissions are handed out only by keys that hold them"
        );
    }
}

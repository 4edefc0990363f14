//! Wire types of the admin API keys resource. Field names, order and meaning follow OpenAI's
//! `organization.admin_api_key` contract; they are separate from the row types on purpose.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use actix_web::web::Bytes;

use crate::cache::CachedView;
use crate::cache::usage::UsageTracker;
use crate::domain::McpPresets;
use crate::domain::{
    MAX_EXPIRES_IN_SECONDS, MAX_NAME_CHARS, MAX_OVERLAP_SECONDS, MAX_PERMISSIONS, Permissions,
    Scope,
};
use crate::error::ApiError;
use crate::extract::RequestBody;
use crate::models::admin_api_key::{AdminApiKeyRow, KeyWithOwner};
use crate::models::user::User;
use crate::routes::mcp::{McpPolicyJson, McpPolicyRequest, expects_mcp};
use crate::services::keys::Issued;

/// Always `organization.admin_api_key`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum AdminApiKeyObject {
    #[serde(rename = "organization.admin_api_key")]
    AdminApiKey,
}

/// Always `organization.admin_api_key.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum DeletedObject {
    #[serde(rename = "organization.admin_api_key.deleted")]
    Deleted,
}

/// An admin API key as the API shows it. The secret itself is never part of this object.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminApiKey {
    pub object: AdminApiKeyObject,
    /// Identifier of the key, used in the URLs of this API.
    #[schema(example = "key_2kQy8n1XbV3mPz7TfL0aWcRe")]
    pub id: String,
    /// The name given to the key at creation.
    #[schema(example = "Deploy pipeline")]
    pub name: String,
    /// A recognisable but harmless form of the secret: its first 8 and last 3 characters.
    #[schema(example = "sk-admin...q3Z")]
    pub redacted_value: String,
    /// When the key was made, in Unix seconds.
    #[schema(example = 1763891200)]
    pub created_at: i64,
    /// When the key last authenticated a request, in Unix seconds; `null` if never.
    #[schema(required = true, example = 1763894800)]
    pub last_used_at: Option<i64>,
    /// When the key stops working, in Unix seconds; `null` if it never expires.
    #[schema(required = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    pub owner: Owner,
    /// What the key may do. Not part of OpenAI's object; clients that do not know it ignore it.
    pub scopes: Vec<Scope>,
    /// Whether the key authenticates requests; a disabled key gets 401 until re-enabled.
    pub enabled: bool,
    /// What the key may do in the operator's own services (an extension; `[]` when none):
    /// strings this service does not interpret, a trailing `*` making a prefix pattern.
    #[schema(value_type = Vec<String>, example = json!(["billing:read", "reports:*"]))]
    pub permissions: Permissions,
    /// What the key may do on MCP servers (an extension), its preset resolved.
    pub mcp: McpPolicyJson,
}

/// The user a key belongs to. A key made through the API belongs to the owner of the key that
/// made it, unless the request named another `owner_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Owner {
    /// Always `user`.
    #[serde(rename = "type")]
    #[schema(example = "user")]
    pub kind: &'static str,
    /// Always `organization.user`.
    #[schema(example = "organization.user")]
    pub object: &'static str,
    /// Identifier of the user.
    #[schema(example = "user_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    /// The user's name.
    #[schema(example = "Platform team")]
    pub name: String,
    /// When the user was made, in Unix seconds.
    #[schema(example = 1763891200)]
    pub created_at: i64,
    /// The user's role in the organisation: `owner` or `reader`. The role is a ceiling on the
    /// key: a `reader`'s key can use only the read scopes among its `scopes`.
    #[schema(example = "owner")]
    pub role: String,
}

/// The answer to a create: the key object plus its secret value, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminApiKeyCreateResponse {
    #[serde(flatten)]
    pub key: AdminApiKey,
    /// The full secret. Store it now: the service keeps only a hash and cannot show it again.
    #[schema(example = "sk-admin-4fTz9QbLw2Xc7VnR1kJm8HsD3yPa6GeU0oNiKtWq5Z1c2B")]
    pub value: String,
}

/// Body of a rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateAdminApiKeyRequest {
    /// Lifetime of the new key in seconds (bounds as on create). Leave it out to give the new
    /// key the lifetime the old one was given (its `expires_at - created_at`), counted from
    /// now; `null` makes a key that does not expire.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<i64>, nullable = true)]
    pub expires_in_seconds: Option<Option<i64>>,
    /// How long the old key keeps working, in seconds (default 0: it stops now; at most 7
    /// days).
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, default = 0)]
    pub previous_key_expires_in_seconds: Option<i64>,
}

/// The answer to a rotation: the new key with its secret, and the id it replaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminApiKeyRotateResponse {
    #[serde(flatten)]
    pub created: AdminApiKeyCreateResponse,
    /// Id of the key this one replaces; its `expires_at` now marks the end of the overlap.
    pub rotated_from: String,
}

/// Confirmation of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminApiKeyDeleted {
    /// Id of the deleted key.
    pub id: String,
    pub object: DeletedObject,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of a create request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminApiKeyRequest {
    /// A name for the key: 1 to 256 characters, not only spaces, no control characters.
    /// Leading and trailing spaces are removed.
    #[schema(value_type = String, required = true, example = "Deploy pipeline")]
    pub name: Option<String>,
    /// Lifetime of the key in seconds, from 1 second to 365 days (or the organisation's
    /// maximum key lifetime, when it sets one). Leave it out (or send `null`) for the
    /// organisation's default: a key that does not expire, unless the operator set a default
    /// or maximum lifetime (`KEY_DEFAULT_LIFETIME_SECS`, `KEY_MAX_LIFETIME_SECS`).
    #[schema(nullable = true, example = 2592000)]
    pub expires_in_seconds: Option<i64>,
    /// When the key expires, as a Unix time in seconds (an extension, from the seeds'
    /// `apiKeyExpiryDate`/`expiresAt`): after now and within the same bounds as
    /// `expires_in_seconds`, which it replaces (send one of them, not both).
    #[schema(nullable = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// Scopes of the new key; each must be held by the calling key and fit the role of the
    /// key's owner (a `reader`'s keys hold only read scopes). Leave it out to give the new key
    /// the caller's own scopes, within that role.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, min_items = 1)]
    pub scopes: Option<Vec<Scope>>,
    /// Id of the user who will own the key (an extension). Leave it out for the caller's own
    /// owner; naming another user needs `users.write`, and that user must be enabled.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, example = "user_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub owner_id: Option<String>,
    /// Permissions of the new key (an extension; default none): up to 64, each 1 to 128 characters of letters,
    /// digits and `_ . : / -`, optionally ending in `*` (a prefix pattern; `*` alone covers
    /// every permission). Each must be covered by the calling key's own permissions.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, max_items = 64)]
    pub permissions: Option<Vec<String>>,
    /// The key's MCP policy (an extension); fields left out are the calling key's own.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(value_type = Option<McpPolicyRequest>, nullable = false)]
    pub mcp: Option<crate::routes::mcp::McpBody>,
}

/// Body of an update: every field is optional and absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdminApiKeyRequest {
    /// A new name (same rules as on create).
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `false` disables the key (it gets 401 until re-enabled); `true` re-enables it.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    /// The key's new scopes, replacing the old ones; each must be held by the calling key.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, min_items = 1)]
    pub scopes: Option<Vec<Scope>>,
    /// The key's new permissions, replacing the old ones (an extension; `[]` removes all): up to 64, each 1 to 128 characters of letters,
    /// digits and `_ . : / -`, optionally ending in `*` (a prefix pattern; `*` alone covers
    /// every permission). Each must be covered by the calling key's own permissions.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, max_items = 64)]
    pub permissions: Option<Vec<String>>,
    /// A new, earlier end for the key, as a Unix time in seconds (an extension): after now,
    /// and never later than its current `expires_at` (an update shortens a key's life; to
    /// extend it, rotate it). A key that never expired may be given any end within the
    /// organisation's maximum lifetime (365 days without one). The key stops working at that
    /// second, on every replica.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// Changes to the key's MCP policy (an extension); fields left out keep their value.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(value_type = Option<McpPolicyRequest>, nullable = false)]
    pub mcp: Option<crate::routes::mcp::McpBody>,
}

impl RequestBody for CreateAdminApiKeyRequest {
    const FIELDS: &'static [&'static str] = &[
        "name",
        "expires_in_seconds",
        "scopes",
        "owner_id",
        "permissions",
        "expires_at",
        "mcp",
    ];

    fn expects(field: &str) -> String {
        match field {
            "name" => expects_name(),
            "expires_in_seconds" => expects_lifetime(),
            "expires_at" => expects_expiry(),
            "owner_id" => "a user id (`user_` and 24 letters or digits)".to_owned(),
            "permissions" => expects_permissions(),
            "mcp" => expects_mcp(),
            _ => expects_scopes(),
        }
    }
}

impl RequestBody for UpdateAdminApiKeyRequest {
    const FIELDS: &'static [&'static str] = &[
        "name",
        "enabled",
        "scopes",
        "permissions",
        "expires_at",
        "mcp",
    ];

    fn expects(field: &str) -> String {
        match field {
            "name" => expects_name(),
            "expires_at" => expects_expiry(),
            "enabled" => "`true` or `false`".to_owned(),
            "permissions" => expects_permissions(),
            "mcp" => expects_mcp(),
            _ => expects_scopes(),
        }
    }
}

impl RequestBody for RotateAdminApiKeyRequest {
    const FIELDS: &'static [&'static str] =
        &["expires_in_seconds", "previous_key_expires_in_seconds"];

    fn expects(field: &str) -> String {
        match field {
            "expires_in_seconds" => expects_lifetime(),
            _ => format!("a whole number of seconds from 0 to {MAX_OVERLAP_SECONDS}"),
        }
    }
}

fn expects_name() -> String {
    format!("a string of 1 to {MAX_NAME_CHARS} characters")
}

fn expects_lifetime() -> String {
    format!("a whole number of seconds from 1 to {MAX_EXPIRES_IN_SECONDS}, or null for no expiry")
}

/// What `expires_at` takes.
pub fn expects_expiry() -> String {
    "a Unix time in whole seconds, after now".to_owned()
}

fn expects_permissions() -> String {
    format!("an array of at most {MAX_PERMISSIONS} permission strings")
}

fn expects_scopes() -> String {
    let names: Vec<String> = Scope::ALL.iter().map(|s| format!("`{s}`")).collect();
    format!("an array of scope names: {}", names.join(", "))
}

/// Sort direction by creation time.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    Asc,
    Desc,
}

/// Query parameters of a list (documentation only: `list` parses the query string with the
/// shared parser, so that a bad value gets a 400 naming it).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A key id: the page starts right after this key, in the requested order. Use the
    /// `last_id` of the previous page.
    pub after: Option<String>,
    /// Page size (bounds in the schema).
    #[param(value_type = Option<i64>, default = 20)]
    pub limit: Option<String>,
    /// A page number, from 1 (an extension, from seed 002), instead of `after` (not both): the
    /// page of `limit` keys that starts `(page - 1) * limit` keys in, at most 10,000 keys deep.
    /// The answer then carries `page` and `total`.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(value_type = Option<ListOrder>, default = "asc")]
    pub order: Option<String>,
    /// Only keys whose name contains this text (case-insensitive), whose id is exactly this
    /// text, or whose `redacted_value` starts with it. Combines with the other parameters.
    pub search: Option<String>,
    /// Only keys in this state: `active` (enabled and not expired), `expired` (enabled, past
    /// `expires_at`) or `disabled`.
    #[param(value_type = Option<KeyStatusParam>)]
    pub status: Option<String>,
    /// Only keys owned by this user (an extension).
    pub owner_id: Option<String>,
    /// Only keys holding exactly this permission string (an extension; `billing:*` finds keys
    /// holding that pattern, not every key it would cover).
    pub permission: Option<String>,
}

/// Values of the `status` filter.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatusParam {
    Active,
    Expired,
    Disabled,
}

impl AdminApiKey {
    /// The wire form of a stored key, with this process's latest unflushed use folded in.
    pub fn shown((row, owner): KeyWithOwner, usage: &UsageTracker, presets: &McpPresets) -> Self {
        let mut shown = Self::stored(row, owner, presets);
        shown.last_used_at = usage.overlay(&shown.id, shown.last_used_at);
        shown
    }

    /// The wire form of a stored key exactly as stored.
    pub fn stored(row: AdminApiKeyRow, owner: User, presets: &McpPresets) -> Self {
        Self {
            mcp: McpPolicyJson::shown(&row.mcp, presets),
            object: AdminApiKeyObject::AdminApiKey,
            last_used_at: row.last_used_at,
            id: row.id,
            name: row.name,
            redacted_value: row.redacted_value,
            created_at: row.created_at,
            expires_at: row.expires_at,
            owner: Owner::from(owner),
            scopes: row.scopes.to_vec(),
            enabled: row.enabled,
            permissions: row.permissions,
        }
    }
}

impl From<User> for Owner {
    fn from(user: User) -> Self {
        Self {
            kind: "user",
            object: "organization.user",
            id: user.id,
            name: user.name,
            created_at: user.created_at,
            role: user.role,
        }
    }
}

/// A key's body as stored (no overlay), for the view cache.
pub fn render_stored(
    key: KeyWithOwner,
    presets: &McpPresets,
) -> Result<(KeyWithOwner, Bytes), ApiError> {
    let stored = AdminApiKey::stored(key.0.clone(), key.1.clone(), presets);
    let body = serde_json::to_vec(&stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok((key, body.into()))
}

/// The body of a cached view as this process shows it: the cached bytes, unless a use not yet
/// written makes `last_used_at` newer.
pub fn view_body(
    view: &CachedView,
    usage: &UsageTracker,
    presets: &McpPresets,
) -> Result<Bytes, ApiError> {
    let row = &view.key.0;
    if usage.overlay(&row.id, row.last_used_at) == row.last_used_at {
        return Ok(view.body.clone());
    }
    let shown = AdminApiKey::shown(view.key.clone(), usage, presets);
    let body = serde_json::to_vec(&shown).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(body.into())
}

impl AdminApiKeyCreateResponse {
    /// The wire form of a key just issued, carrying its secret this once.
    pub fn issued(issued: Issued, usage: &UsageTracker, presets: &McpPresets) -> Self {
        Self {
            key: AdminApiKey::shown(issued.key, usage, presets),
            value: issued.secret.expose().to_owned(),
        }
    }
}

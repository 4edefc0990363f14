//! Wire types of project API keys, following OpenAI's `organization.project.api_key` contract;
//! `scopes` on the object and the create body (with its response) are our extensions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cache::usage::UsageTracker;
use crate::domain::McpPresets;
use crate::domain::permissions::{MAX_PERMISSION_CHARS, MAX_PERMISSIONS};
use crate::domain::{MAX_NAME_CHARS, Permissions};
use crate::extract::RequestBody;
use crate::models::project_api_key::{KeyWithOwner, OwnerDetails};
use crate::routes::mcp::{McpPolicyJson, McpPolicyRequest, expects_mcp};

/// Always `organization.project.api_key`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ProjectApiKeyObject {
    #[serde(rename = "organization.project.api_key")]
    ApiKey,
}

/// Always `organization.project.api_key.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ProjectApiKeyDeletedObject {
    #[serde(rename = "organization.project.api_key.deleted")]
    Deleted,
}

/// Whether the key's owner may use the project now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OwnerProjectAccess {
    /// The project is not archived, and the owner is a service account of it or an enabled
    /// member of it: the key works (unless disabled or expired).
    Active,
    /// The project is archived, or the member left it or is disabled: the key is refused.
    Inactive,
}

/// What owns a key.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerType {
    User,
    ServiceAccount,
}

/// The member who owns a key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectApiKeyOwnerUser)]
pub struct OwnerUserJson {
    pub id: String,
    /// Their email address; left out for a user without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub name: String,
    /// When the user joined the organisation, in Unix seconds.
    pub created_at: i64,
    /// Their role in the project, `owner` or `member`; `none` once they left it.
    pub role: String,
}

/// The service account that owns a key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectApiKeyOwnerServiceAccount)]
pub struct OwnerServiceAccountJson {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// Its role in the project.
    pub role: String,
}

/// Who owns a key: `type` says which of the other two fields is present.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerJson {
    #[serde(rename = "type")]
    pub kind: OwnerType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<OwnerUserJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<OwnerServiceAccountJson>,
}

/// A key of a project, as listed and retrieved (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectApiKey)]
pub struct ProjectApiKeyJson {
    pub object: ProjectApiKeyObject,
    /// The first and last characters of the key (`sk-proj-...xyz`).
    #[schema(example = "sk-proj-...a1B")]
    pub redacted_value: String,
    pub name: String,
    /// When it was made, in Unix seconds.
    pub created_at: i64,
    /// When it last passed a check (forward auth or introspection), in Unix seconds; `null`
    /// if never.
    #[schema(required = true)]
    pub last_used_at: Option<i64>,
    #[schema(example = "key_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    pub owner_project_access: OwnerProjectAccess,
    pub owner: OwnerJson,
    /// The key's scopes (an extension): free-form strings for the services behind the proxy.
    #[schema(value_type = Vec<String>, example = json!(["chat:*"]))]
    pub scopes: Permissions,
    /// When the key stops working, in Unix seconds (an extension); `null` if it never expires.
    #[schema(required = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// What the key may do on MCP servers (an extension), its preset resolved.
    pub mcp: McpPolicyJson,
}

impl ProjectApiKeyJson {
    /// The wire form of `found`, its `last_used_at` overlaid with uses not yet written.
    pub fn new(found: KeyWithOwner, usage: &UsageTracker, presets: &McpPresets) -> Self {
        let key = found.key;
        let owner = match found.owner {
            OwnerDetails::User(user, role) => OwnerJson {
                kind: OwnerType::User,
                user: Some(OwnerUserJson {
                    id: user.id,
                    email: user.email,
                    name: user.name,
                    created_at: user.created_at,
                    role: role.unwrap_or_else(|| "none".to_owned()),
                }),
                service_account: None,
            },
            OwnerDetails::ServiceAccount(account) => OwnerJson {
                kind: OwnerType::ServiceAccount,
                user: None,
                service_account: Some(OwnerServiceAccountJson {
                    id: account.id,
                    name: account.name,
                    created_at: account.created_at,
                    role: account.role,
                }),
            },
        };
        Self {
            mcp: McpPolicyJson::shown(&key.mcp, presets),
            object: ProjectApiKeyObject::ApiKey,
            last_used_at: usage.overlay(&key.id, key.last_used_at),
            redacted_value: key.redacted_value,
            name: key.name,
            created_at: key.created_at,
            id: key.id,
            owner_project_access: if found.owner_has_access {
                OwnerProjectAccess::Active
            } else {
                OwnerProjectAccess::Inactive
            },
            owner,
            scopes: key.scopes,
            expires_at: key.expires_at,
        }
    }
}

/// A member's key just made (our extension): the key object and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectApiKeyCreated {
    #[serde(flatten)]
    pub key: ProjectApiKeyJson,
    /// The key itself (`sk-proj-…`). Shown this once: store it now.
    pub value: String,
}

/// Confirmation of a delete.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectApiKeyDeleteResponse)]
pub struct ProjectApiKeyDeleted {
    pub object: ProjectApiKeyDeletedObject,
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of a member's new key (our extension: upstream makes them only in its dashboard).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectApiKeyRequest {
    /// The member who will own the key: an enabled user who is a member of the project.
    #[schema(value_type = String, required = true, example = "user_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub user_id: Option<String>,
    /// The key's name: 1 to 256 characters; `Secret Key` when left out.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// The key's scopes, free-form strings for the services behind the proxy (a trailing `*`
    /// makes a prefix pattern), each covered by the caller's own effective permissions. None
    /// when left out.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub scopes: Option<Vec<String>>,
    /// Lifetime of the key in seconds (an extension), as on admin keys: 1 to 365 days, or the
    /// organisation's maximum. Left out: the organisation's default (by default, none).
    #[schema(nullable = true, example = 2592000)]
    pub expires_in_seconds: Option<i64>,
    /// When the key expires, as a Unix time in seconds (an extension), in place of
    /// `expires_in_seconds` (not both), within the same bounds.
    #[schema(nullable = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// The key's MCP policy (an extension); fields left out are the calling key's own.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(value_type = Option<McpPolicyRequest>, nullable = false)]
    pub mcp: Option<crate::routes::mcp::McpBody>,
}

impl RequestBody for CreateProjectApiKeyRequest {
    const FIELDS: &'static [&'static str] = &[
        "user_id",
        "name",
        "scopes",
        "expires_in_seconds",
        "expires_at",
        "mcp",
    ];

    fn expects(field: &str) -> String {
        match field {
            "user_id" => "a user id".to_owned(),
            "expires_in_seconds" => "a whole number of seconds, or null".to_owned(),
            "expires_at" => "a Unix time in whole seconds, after now, or null".to_owned(),
            "name" => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
            "mcp" => expects_mcp(),
            _ => format!(
                "an array of at most {MAX_PERMISSIONS} scopes of 1 to {MAX_PERMISSION_CHARS} \
                 characters"
            ),
        }
    }
}

//! Wire types of service accounts, following OpenAI's `organization.project.service_account`
//! contract.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::permissions::{MAX_PERMISSION_CHARS, MAX_PERMISSIONS};
use crate::domain::{MAX_NAME_CHARS, ProjectRole};
use crate::extract::RequestBody;
use crate::models::service_account::ServiceAccount;

/// Always `organization.project.service_account`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ServiceAccountObject {
    #[serde(rename = "organization.project.service_account")]
    ServiceAccount,
}

/// Always `organization.project.service_account.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ServiceAccountDeletedObject {
    #[serde(rename = "organization.project.service_account.deleted")]
    Deleted,
}

/// Always `organization.project.service_account.api_key`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ServiceAccountApiKeyObject {
    #[serde(rename = "organization.project.service_account.api_key")]
    ApiKey,
}

/// A service account of a project: an owner of project keys that is not a person.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectServiceAccount)]
pub struct ServiceAccountJson {
    pub object: ServiceAccountObject,
    /// Identifier of the service account, used in the URLs of this API.
    #[schema(example = "svc_acct_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    /// Its name.
    #[schema(example = "Billing worker")]
    pub name: String,
    /// `owner` or `member`; `none` when it was made with `create_service_account_only`.
    #[schema(example = "member")]
    pub role: String,
    /// When it was made, in Unix seconds.
    #[schema(example = 1763891200)]
    pub created_at: i64,
}

impl From<ServiceAccount> for ServiceAccountJson {
    fn from(account: ServiceAccount) -> Self {
        Self {
            object: ServiceAccountObject::ServiceAccount,
            id: account.id,
            name: account.name,
            role: account.role,
            created_at: account.created_at,
        }
    }
}

/// A service account's key as made: the only response that carries its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectServiceAccountApiKey)]
pub struct ServiceAccountApiKeyJson {
    pub object: ServiceAccountApiKeyObject,
    /// The key itself (`sk-svcacct-…`). Shown this once: store it now.
    #[schema(example = "sk-svcacct-Xb7...")]
    pub value: String,
    /// The key's name.
    pub name: String,
    /// When it was made, in Unix seconds.
    pub created_at: i64,
    /// Identifier of the key, as the project's key list shows it.
    #[schema(example = "key_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    /// When the key stops working, in Unix seconds (an extension); `null` if it never expires.
    #[schema(required = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// What the key may do on MCP servers (an extension), its preset resolved.
    pub mcp: crate::routes::mcp::McpPolicyJson,
}

/// A service account just made, with its first key unless it was made without one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectServiceAccountCreateResponse)]
pub struct ServiceAccountCreated {
    pub object: ServiceAccountObject,
    pub id: String,
    pub name: String,
    /// `member`, or `none` when made with `create_service_account_only`.
    pub role: String,
    pub created_at: i64,
    /// Its first key, with the secret; `null` when made with `create_service_account_only`.
    #[schema(required = true)]
    pub api_key: Option<ServiceAccountApiKeyJson>,
}

/// Confirmation of a delete.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProjectServiceAccountDeleteResponse)]
pub struct ServiceAccountDeleted {
    pub object: ServiceAccountDeletedObject,
    /// Id of the deleted service account.
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProjectServiceAccountCreateRequest)]
pub struct CreateServiceAccountRequest {
    /// The name: 1 to 256 characters.
    #[schema(value_type = String, required = true)]
    pub name: Option<String>,
    /// `true` makes the service account with role `none` and no key.
    #[schema(nullable = true)]
    pub create_service_account_only: Option<bool>,
}

impl RequestBody for CreateServiceAccountRequest {
    const FIELDS: &'static [&'static str] = &["name", "create_service_account_only"];

    fn expects(field: &str) -> String {
        match field {
            "name" => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
            _ => "`true`, `false` or null".to_owned(),
        }
    }
}

/// Body of an update: at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateProjectServiceAccountBody)]
pub struct UpdateServiceAccountRequest {
    /// A new name: 1 to 256 characters.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// A new role: `owner` or `member`.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub role: Option<ProjectRole>,
}

impl RequestBody for UpdateServiceAccountRequest {
    const FIELDS: &'static [&'static str] = &["name", "role"];

    fn expects(field: &str) -> String {
        match field {
            "name" => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
            _ => "`owner` or `member`".to_owned(),
        }
    }
}

/// Body of a new key for a service account; every field optional (so is the body).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateProjectServiceAccountApiKeyBody)]
pub struct CreateServiceAccountKeyRequest {
    /// The key's name: 1 to 256 characters; `Secret Key` when left out.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// The key's scopes, free-form strings for the services behind the proxy (a trailing `*`
    /// makes a prefix pattern). Each must be covered by the caller's own effective
    /// permissions. None when left out.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub scopes: Option<Vec<String>>,
    /// Lifetime of the key in seconds, as on admin keys: 1 to 365 days, or the organisation's
    /// maximum. Left out: the organisation's default (by default, none).
    #[schema(nullable = true, example = 2592000)]
    pub expires_in_seconds: Option<i64>,
    /// When the key expires, as a Unix time in seconds, in place of `expires_in_seconds` (not
    /// both), within the same bounds.
    #[schema(nullable = true, example = 1766483200)]
    pub expires_at: Option<i64>,
    /// The key's MCP policy (an extension); fields left out are the calling key's own.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(value_type = Option<crate::routes::mcp::McpPolicyRequest>, nullable = false)]
    pub mcp: Option<crate::routes::mcp::McpBody>,
}

impl RequestBody for CreateServiceAccountKeyRequest {
    const FIELDS: &'static [&'static str] =
        &["name", "scopes", "expires_in_seconds", "expires_at", "mcp"];

    fn expects(field: &str) -> String {
        match field {
            "name" => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
            "expires_in_seconds" => "a whole number of seconds, or null".to_owned(),
            "expires_at" => "a Unix time in whole seconds, after now, or null".to_owned(),
            "mcp" => crate::routes::mcp::expects_mcp(),
            _ => format!(
                "an array of at most {MAX_PERMISSIONS} scopes of 1 to {MAX_PERMISSION_CHARS} \
                 characters"
            ),
        }
    }
}

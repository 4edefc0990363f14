//! Wire types of the users resource, following OpenAI's `organization.user` contract; `enabled`
//! (and `name` and `enabled` in a change) are extensions.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::permissions::{MAX_PERMISSION_CHARS, MAX_PERMISSIONS};
use crate::domain::{MAX_NAME_CHARS, MAX_PERSON_NAME_CHARS, Permissions, Role};
use crate::extract::RequestBody;
use crate::models::user::User;

/// Always `organization.user`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum UserObject {
    #[serde(rename = "organization.user")]
    User,
}

/// Always `organization.user.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum UserDeletedObject {
    #[serde(rename = "organization.user.deleted")]
    Deleted,
}

/// A member of the organisation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrganizationUser)]
pub struct UserJson {
    pub object: UserObject,
    /// Identifier of the user, used in the URLs of this API and as a key's `owner.id`.
    #[schema(example = "user_8QwJ3rT5yU7iO9pA1sD2fG4h")]
    pub id: String,
    /// The user's name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The user's email address, lower-cased; `null` for an owner bootstrapped without one.
    #[schema(required = true, example = "ada@example.com")]
    pub email: Option<String>,
    /// `owner` (their keys may hold any scope) or `reader` (only the read scopes).
    pub role: Role,
    /// When the user joined, in Unix seconds.
    #[schema(example = 1763891200)]
    pub added_at: i64,
    /// Whether the user's keys work (an extension). A disabled user's keys answer 401
    /// `user_disabled` until the user is enabled again.
    pub enabled: bool,
    /// The ceiling of what the user's keys may do in your own services (an extension): a key's
    /// effective permissions, as forward auth and introspection see them, are its own within
    /// these. `["*"]` (every permission) for an owner; for a reader, what an owner set (none
    /// by default).
    #[schema(value_type = Vec<String>, example = json!(["billing:read"]))]
    pub permissions: Permissions,
    /// The member's first name (an extension, from seed 000); `null` when not given.
    #[schema(required = true, example = "Ada")]
    pub first_name: Option<String>,
    /// The member's last name (an extension); `null` when not given.
    #[schema(required = true, example = "Lovelace")]
    pub last_name: Option<String>,
    /// The member's phone number in E.164 form (an extension); `null` when not given.
    #[schema(required = true, example = "+436761234567")]
    pub phone_number: Option<String>,
}

impl From<User> for UserJson {
    fn from(user: User) -> Self {
        Self {
            object: UserObject::User,
            role: user.role(),
            id: user.id,
            name: user.name,
            email: user.email,
            added_at: user.created_at,
            enabled: user.enabled,
            permissions: user.permissions,
            first_name: user.first_name,
            last_name: user.last_name,
            phone_number: user.phone_number,
        }
    }
}

/// Confirmation of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDeleted {
    pub object: UserDeletedObject,
    /// Id of the deleted user.
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of a change: every field is optional (at least one must be set) and absent fields keep
/// their value. A partial update, as upstream's modify (unlike seed 000's `updateUser`, which
/// replaces every field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyUserRequest {
    /// The new role: `owner` or `reader`. Demoting takes write access from the user's keys on
    /// their next request; promoting gives their keys nothing they were not granted.
    #[schema(nullable = true)]
    pub role: Option<Role>,
    /// Accepted for compatibility; only `null` (this service has no role ids: use `role`).
    #[schema(value_type = Option<String>, nullable = true)]
    pub role_id: Option<serde_json::Value>,
    /// Accepted for compatibility; only `null` (this service keeps no such metadata).
    #[schema(value_type = Option<String>, nullable = true)]
    pub technical_level: Option<serde_json::Value>,
    /// Accepted for compatibility; only `null` (this service keeps no such metadata).
    #[schema(value_type = Option<String>, nullable = true)]
    pub developer_persona: Option<serde_json::Value>,
    /// A new name (an extension): 1 to 256 characters.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `false` disables the user (their keys answer 401 `user_disabled`), `true` enables them
    /// again (an extension).
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    /// A reader's new permission ceiling (an extension): up to 64 permissions as on keys. The
    /// user's keys count downstream only within it, from their next request. Widening it, or
    /// anything the user's keys regain by a change, must be covered by the caller's own
    /// permissions. Demoting an owner without it leaves the reader none.
    #[serde(default, deserialize_with = "crate::extract::non_null")]
    #[schema(nullable = false)]
    pub permissions: Option<Vec<String>>,
    /// A new first name (an extension): 1 to 100 characters; `null` clears it. While the
    /// user's `name` is the one derived from their first and last names (`first last`), it
    /// follows them, unless this change also sends `name`.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, nullable = true, max_length = 100)]
    pub first_name: Option<Option<String>>,
    /// A new last name (an extension): as `first_name`.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, nullable = true, max_length = 100)]
    pub last_name: Option<Option<String>>,
    /// A new phone number (an extension), in E.164 form (`+`, country code and number, digits
    /// only) and assigned by its country's numbering plan; `null` clears it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, nullable = true, example = "+436761234567")]
    pub phone_number: Option<Option<String>>,
}

impl RequestBody for ModifyUserRequest {
    const FIELDS: &'static [&'static str] = &[
        "role",
        "role_id",
        "technical_level",
        "developer_persona",
        "name",
        "enabled",
        "permissions",
        "first_name",
        "last_name",
        "phone_number",
    ];

    fn expects(field: &str) -> String {
        match field {
            "role" => "`owner` or `reader`".to_owned(),
            "first_name" | "last_name" => {
                format!("a string of 1 to {MAX_PERSON_NAME_CHARS} characters, or null")
            }
            "phone_number" => "a phone number in E.164 form (a string), or null".to_owned(),
            "name" => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
            "enabled" => "`true` or `false`".to_owned(),
            "permissions" => format!(
                "an array of at most {MAX_PERMISSIONS} permissions of 1 to \
                 {MAX_PERMISSION_CHARS} characters"
            ),
            _ => "null".to_owned(),
        }
    }
}

/// Query parameters of the list (documentation only: the route parses the query string with
/// the shared parser).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UserListQuery {
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, default = 20)]
    limit: Option<String>,
    /// A user id: the page starts right after this user. Use the `last_id` of the previous
    /// page.
    after: Option<String>,
    /// Only users with one of these email addresses, compared case-insensitively (repeat the
    /// parameter for several; `emails` is accepted too).
    #[serde(rename = "emails[]")]
    emails: Option<Vec<String>>,
}

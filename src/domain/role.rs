//! A member's role in the organisation: OpenAI's `owner` and `reader`.
//!
//! Policy: a role is a ceiling, not a grant. A key's effective scopes are its own scopes within
//! its owner's role, so demoting an owner takes write access from their keys on the next
//! request, and promoting a reader gives their keys nothing they were not already granted.
//! The same holds downstream: a member's `permissions` ceiling caps their keys' permissions,
//! and an owner's ceiling is every permission (`*`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Invalid, Permissions, Scope, Scopes};

/// A member's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May hold every scope.
    Owner,
    /// May hold only the read scopes.
    Reader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Reader => "reader",
        }
    }

    /// The most a key of a member with this role may do.
    pub fn ceiling(self) -> Scopes {
        match self {
            Role::Owner => Scopes::all(),
            Role::Reader => Scope::READ.into_iter().collect(),
        }
    }

    /// The permission ceiling a member with this role starts with: every permission for an
    /// owner, none for a reader (an owner grants a reader theirs, see `services::users`).
    pub fn default_permissions(self) -> Permissions {
        match self {
            Role::Owner => Permissions::all(),
            Role::Reader => Permissions::default(),
        }
    }

    /// The stored form back; anything unknown (a row written by a newer version, or by hand)
    /// reads as the least powerful role.
    pub fn from_db(stored: &str) -> Role {
        match stored {
            "owner" => Role::Owner,
            _ => Role::Reader,
        }
    }

    /// A role named by a client; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<Role, Invalid> {
        match raw {
            "owner" => Ok(Role::Owner),
            "reader" => Ok(Role::Reader),
            _ => Err(Invalid::new(
                param,
                format!("`{param}` must be `owner` or `reader`."),
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_may_hold_only_read_scopes() {
        let reader = Role::Reader.ceiling();
        for scope in Scope::ALL {
            let write = matches!(
                scope,
                Scope::AdminApiKeysWrite | Scope::ProjectsWrite | Scope::UsersWrite
            );
            assert_eq!(reader.contains(scope), !write, "{scope}");
            assert!(Role::Owner.ceiling().contains(scope));
        }
    }

    #[test]
    fn unknown_stored_roles_read_as_reader() {
        assert_eq!(Role::from_db("owner"), Role::Owner);
        assert_eq!(Role::from_db("admin"), Role::Reader);
        assert!(Role::parse("role", "member").is_err());
    }
}

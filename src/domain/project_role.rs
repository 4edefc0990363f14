//! A role inside a project: OpenAI's `owner` and `member` (for members and service accounts).
//!
//! Policy: stored as its name; a stored value this version does not know reads as `member`,
//! the less powerful role.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;

/// A role in a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// Manages the project.
    Owner,
    /// Uses the project.
    Member,
}

impl ProjectRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Owner => "owner",
            ProjectRole::Member => "member",
        }
    }

    /// The stored form back; anything unknown reads as `member`.
    pub fn from_db(stored: &str) -> ProjectRole {
        match stored {
            "owner" => ProjectRole::Owner,
            _ => ProjectRole::Member,
        }
    }

    /// A role named by a client; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<ProjectRole, Invalid> {
        match raw {
            "owner" => Ok(ProjectRole::Owner),
            "member" => Ok(ProjectRole::Member),
            _ => Err(Invalid::new(
                param,
                format!("`{param}` must be `owner` or `member`."),
            )),
        }
    }
}

impl std::fmt::Display for ProjectRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_roles_round_trip_and_unknown_ones_read_as_member() {
        for role in [ProjectRole::Owner, ProjectRole::Member] {
            assert_eq!(ProjectRole::from_db(role.as_str()), role);
            assert_eq!(ProjectRole::parse("role", role.as_str()), Ok(role));
        }
        assert_eq!(ProjectRole::from_db("admin"), ProjectRole::Member);
        assert!(ProjectRole::parse("role", "reader").is_err());
    }
}

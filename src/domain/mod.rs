//! Domain types: values parsed once at the edge (HTTP handlers, the CLI) and trusted after.
//!
//! Policy: each type's `parse` is the only way to make one from outside input, so a value of
//! the type proves it is valid. Parse errors name the parameter and say what is accepted; they
//! never repeat the value itself (it may be a secret pasted into the wrong field).

mod email;
pub mod idempotency;
mod lifetime;
pub mod mcp;
mod member;
pub mod model;
mod name;
pub mod permissions;
mod phone;
mod project_role;
pub mod rate_limits;
mod role;
pub mod scopes;
pub mod secret;

pub use email::{Email, MAX_EMAIL_CHARS, skeleton_of};
pub use lifetime::{
    Expiry, KeyLifetime, LifetimePolicy, MAX_EXPIRES_IN_SECONDS, MAX_OVERLAP_SECONDS, Overlap,
    only_earlier,
};
pub use mcp::{McpPolicy, McpPresets};
pub use member::{MAX_PERSON_NAME_CHARS, PersonName, derived_name};
pub use model::BodyModel;
pub use name::{KeyName, MAX_NAME_CHARS};
pub use permissions::{MAX_PERMISSION_CHARS, MAX_PERMISSIONS, Permissions};
pub use phone::{MAX_PHONE_DIGITS, PhoneNumber};
pub use project_role::ProjectRole;
pub use role::Role;
pub use scopes::{Scope, Scopes};

/// Why a value was refused: the parameter and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub param: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param,
            message: message.into(),
        }
    }
}

impl From<Invalid> for crate::error::ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::InvalidRequest {
            message: invalid.message,
            param: Some(invalid.param.to_owned()),
            code: None,
        }
    }
}

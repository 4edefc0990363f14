//! What a key may do.
//!
//! Policy: the set of scopes is fixed and documented; a key holds a subset. A key can never
//! give another key (by create, update or rotation) a scope it does not hold itself.
//! Stored as a sorted, space-separated string; shown as a JSON array.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One permission.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    /// List and retrieve admin keys.
    #[serde(rename = "admin_api_keys.read")]
    AdminApiKeysRead,
    /// Create, update, rotate and delete admin keys.
    #[serde(rename = "admin_api_keys.write")]
    AdminApiKeysWrite,
    /// Read the audit log.
    #[serde(rename = "audit_logs.read")]
    AuditLogsRead,
}

impl Scope {
    /// Every scope, in stored order.
    pub const ALL: [Scope; 3] = [
        Scope::AdminApiKeysRead,
        Scope::AdminApiKeysWrite,
        Scope::AuditLogsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AdminApiKeysRead => "admin_api_keys.read",
            Scope::AdminApiKeysWrite => "admin_api_keys.write",
            Scope::AuditLogsRead => "audit_logs.read",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of `self` that `holder` lacks.
    pub fn missing_from(self, holder: Scopes) -> Vec<Scope> {
        self.iter().filter(|s| !holder.contains(*s)).collect()
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The stored form: sorted names separated by spaces.
    pub fn to_db(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Reads the stored form; unknown names (from a newer version) are ignored.
    pub fn from_db(stored: &str) -> Self {
        stored.split_whitespace().filter_map(Scope::parse).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_and_is_sorted() {
        let set: Scopes = [Scope::AuditLogsRead, Scope::AdminApiKeysRead]
            .into_iter()
            .collect();
        assert_eq!(set.to_db(), "admin_api_keys.read audit_logs.read");
        assert_eq!(Scopes::from_db(&set.to_db()), set);
        assert_eq!(Scopes::from_db(&Scopes::all().to_db()), Scopes::all());
    }

    #[test]
    fn missing_from_lists_what_the_holder_lacks() {
        let wanted = Scopes::all();
        let holder: Scopes = [Scope::AdminApiKeysRead].into_iter().collect();
        assert_eq!(
            wanted.missing_from(holder),
            vec![Scope::AdminApiKeysWrite, Scope::AuditLogsRead]
        );
        assert!(holder.missing_from(wanted).is_empty());
    }
}

//! What a key may do.
//!
//! Policy: the set of scopes is fixed and documented; a key holds a subset. A key can never
//! give another key (by create, update or rotation) a scope it does not hold itself.
//! Stored as a sorted, space-separated string (a Diesel column type over `TEXT`, so rows
//! carry [`Scopes`]); shown as a JSON array. A set holds up to 64 scopes.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::MultiBackend;

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
    /// Ask whether another key is good (`/introspect`, RFC 7662).
    #[serde(rename = "keys.introspect")]
    KeysIntrospect,
    /// List and retrieve projects, their members and their rate limits.
    #[serde(rename = "projects.read")]
    ProjectsRead,
    /// Create, change and archive projects; add, change and remove their members; set their
    /// rate limits.
    #[serde(rename = "projects.write")]
    ProjectsWrite,
    /// List and retrieve users and invites.
    #[serde(rename = "users.read")]
    UsersRead,
    /// Change and delete users; create and delete invites.
    #[serde(rename = "users.write")]
    UsersWrite,
}

impl Scope {
    /// Every scope, in stored order.
    pub const ALL: [Scope; 8] = [
        Scope::AdminApiKeysRead,
        Scope::AdminApiKeysWrite,
        Scope::AuditLogsRead,
        Scope::KeysIntrospect,
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
    ];

    /// The scopes that change nothing (introspection only records a use, as any request).
    pub const READ: [Scope; 5] = [
        Scope::AdminApiKeysRead,
        Scope::AuditLogsRead,
        Scope::KeysIntrospect,
        Scope::ProjectsRead,
        Scope::UsersRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AdminApiKeysRead => "admin_api_keys.read",
            Scope::AdminApiKeysWrite => "admin_api_keys.write",
            Scope::AuditLogsRead => "audit_logs.read",
            Scope::KeysIntrospect => "keys.introspect",
            Scope::ProjectsRead => "projects.read",
            Scope::ProjectsWrite => "projects.write",
            Scope::UsersRead => "users.read",
            Scope::UsersWrite => "users.write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Scopes(u64);

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

    /// The scopes in both sets.
    pub fn intersect(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
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

    /// The scopes in stored order, for the wire.
    pub fn to_vec(self) -> Vec<Scope> {
        self.iter().collect()
    }

    /// Reads the stored form; unknown names (from a newer version) are ignored. The form is
    /// ASCII (names joined by spaces), so it is split on ASCII whitespace: byte comparisons,
    /// where `split_whitespace` decodes and classifies every character (most of a key's
    /// decoding cost in a list page).
    pub fn from_db(stored: &str) -> Self {
        stored
            .split_ascii_whitespace()
            .filter_map(Scope::parse)
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

// The column is TEXT on both backends. Each backend converts the stored form; the
// `MultiBackend` impls dispatch to them, as Diesel's `MultiConnection` docs describe.
impl ToSql<Text, Pg> for Scopes {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        use std::io::Write;
        out.write_all(self.to_db().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl ToSql<Text, Sqlite> for Scopes {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_db());
        Ok(IsNull::No)
    }
}

impl ToSql<Text, MultiBackend> for Scopes {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

impl<DB> FromSql<Text, DB> for Scopes
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Scopes::from_db(&String::from_sql(bytes)?))
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
            vec![
                Scope::AdminApiKeysWrite,
                Scope::AuditLogsRead,
                Scope::KeysIntrospect,
                Scope::ProjectsRead,
                Scope::ProjectsWrite,
                Scope::UsersRead,
                Scope::UsersWrite
            ]
        );
        assert!(holder.missing_from(wanted).is_empty());
    }
}

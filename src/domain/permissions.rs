//! Permissions: strings that mean something to the operator's own services and nothing to
//! this one (seed 002's `permissions`, seed 000's roles such as `CLUSTER_OPS`).
//!
//! Policy: a key holds up to [`MAX_PERMISSIONS`] permissions, each 1 to
//! [`MAX_PERMISSION_CHARS`] characters of `A-Za-z0-9` and `_ . : / -`; a trailing `*` makes
//! one a prefix pattern (`billing:*`), and `*` alone covers every permission. A key can only
//! grant what its own permissions cover (the same no-escalation rule as scopes). Stored as a
//! sorted, space-separated string (a Diesel column type over `TEXT`); shown as a JSON array.

use std::sync::Arc;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use serde::Serialize;

use super::Invalid;
use crate::db::MultiBackend;

/// The most permissions one key holds.
pub const MAX_PERMISSIONS: usize = 64;
/// The longest permission, in characters.
pub const MAX_PERMISSION_CHARS: usize = 128;

/// A set of permissions, sorted and without repeats. Cheap to clone (shared).
#[derive(Clone, Debug, Default, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Permissions(Arc<[String]>);

impl Permissions {
    /// Every permission (`*`): what `bootstrap` gives.
    pub fn all() -> Self {
        Self(Arc::from(vec!["*".to_owned()]))
    }

    /// Checks a client's list; `param` names the field in errors, which never repeat a value.
    pub fn parse(param: &'static str, raw: &[String]) -> Result<Self, Invalid> {
        if raw.len() > MAX_PERMISSIONS {
            return Err(Invalid::new(
                param,
                format!("`{param}` holds at most {MAX_PERMISSIONS} permissions."),
            ));
        }
        for (n, permission) in raw.iter().enumerate() {
            if !is_valid(permission) {
                return Err(Invalid::new(
                    param,
                    format!(
                        "`{param}[{n}]` must be 1 to {MAX_PERMISSION_CHARS} characters of \
                         letters, digits and `_ . : / -`, optionally ending in `*` (a prefix \
                         pattern; `*` alone covers every permission)."
                    ),
                ));
            }
        }
        Ok(Self::from_iter(raw.iter().cloned()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether these permissions cover `wanted` (a permission, or a pattern being granted):
    /// it is held as such, or some held pattern's prefix starts it.
    pub fn covers(&self, wanted: &str) -> bool {
        self.iter().any(|held| match held.strip_suffix('*') {
            Some(prefix) => wanted.starts_with(prefix),
            None => held == wanted,
        })
    }

    /// What these permissions allow within `ceiling`: the intersection of the two sets of
    /// patterns. A permission the ceiling covers stays as it is; one the ceiling only narrows
    /// (`billing:*` under a ceiling of `billing:read`) gives way to the narrower entries. An
    /// entry that another kept entry covers is dropped, so the result is the smallest list
    /// that says the same.
    pub fn within(&self, ceiling: &Permissions) -> Permissions {
        if ceiling.is_everything() {
            return self.clone();
        }
        if self.is_everything() {
            return ceiling.clone();
        }
        let mut kept: Vec<&str> = Vec::new();
        for held in self.iter() {
            if ceiling.covers(held) {
                kept.push(held);
            } else if let Some(prefix) = held.strip_suffix('*') {
                kept.extend(ceiling.iter().filter(|allowed| allowed.starts_with(prefix)));
            }
        }
        let covers = |outer: &str, inner: &str| match outer.strip_suffix('*') {
            Some(prefix) => inner.starts_with(prefix),
            None => outer == inner,
        };
        kept.iter()
            .filter(|entry| {
                !kept
                    .iter()
                    .any(|other| other != *entry && covers(other, entry))
            })
            .map(|entry| (*entry).to_owned())
            .collect()
    }

    /// Whether this is `*`, which covers every permission.
    pub fn is_everything(&self) -> bool {
        self.iter().any(|held| held == "*")
    }

    /// The first of `granted` that these permissions do not cover.
    pub fn first_uncovered<'a>(&self, granted: &'a Permissions) -> Option<&'a str> {
        granted.iter().find(|wanted| !self.covers(wanted))
    }

    /// The stored form: sorted, separated by spaces.
    pub fn to_db(&self) -> String {
        self.0.join(" ")
    }

    /// Reads the stored form (permissions are ASCII, joined by spaces).
    pub fn from_db(stored: &str) -> Self {
        if stored.is_empty() {
            return Self::default();
        }
        stored.split_ascii_whitespace().map(str::to_owned).collect()
    }
}

/// Whether `permission` has the documented shape.
pub fn is_valid(permission: &str) -> bool {
    let body = permission.strip_suffix('*').unwrap_or(permission);
    (1..=MAX_PERMISSION_CHARS).contains(&permission.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
}

impl FromIterator<String> for Permissions {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut all: Vec<String> = iter.into_iter().collect();
        all.sort();
        all.dedup();
        Self(Arc::from(all))
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

// TEXT on both backends, as `Scopes` (see there).
impl ToSql<Text, Pg> for Permissions {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        use std::io::Write;
        out.write_all(self.to_db().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl ToSql<Text, Sqlite> for Permissions {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_db());
        Ok(IsNull::No)
    }
}

impl ToSql<Text, MultiBackend> for Permissions {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

impl<DB> FromSql<Text, DB> for Permissions
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Permissions::from_db(&String::from_sql(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Permissions {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn patterns_cover_what_they_start() {
        let held = set(&["billing:*", "reports:read"]);
        assert!(held.covers("billing:read"));
        assert!(held.covers("billing:"));
        assert!(held.covers("billing:*"), "a pattern covers itself");
        assert!(held.covers("billing:admin:*"), "and narrower patterns");
        assert!(held.covers("reports:read"));
        assert!(!held.covers("reports:write"));
        assert!(
            !held.covers("reports:*"),
            "an exact permission covers no pattern"
        );
        assert!(!held.covers("billing*"), "a wider pattern is not covered");
        assert!(!held.covers("*"));
        assert!(Permissions::all().covers("*"));
        assert!(Permissions::all().covers("anything/at:all"));
        assert!(!Permissions::default().covers("x"));
    }

    #[test]
    fn within_a_ceiling_is_the_intersection_of_both_sets() {
        let key = set(&["billing:*", "reports:read", "ops"]);
        assert_eq!(key.within(&Permissions::all()), key);
        assert_eq!(key.within(&Permissions::default()), Permissions::default());
        assert_eq!(
            key.within(&set(&["billing:read", "reports:*"])),
            set(&["billing:read", "reports:read"]),
            "a wider key pattern gives way to the ceiling's narrower entries"
        );
        assert_eq!(
            key.within(&set(&["billing:*"])),
            set(&["billing:*"]),
            "an entry the ceiling covers stays"
        );
        assert_eq!(
            Permissions::all().within(&set(&["a:*", "b"])),
            set(&["a:*", "b"])
        );
        assert_eq!(
            set(&["a:*", "a:b:*"]).within(&set(&["a:b:c", "a:*"])),
            set(&["a:*"]),
            "entries another kept entry covers are dropped"
        );
        assert_eq!(set(&["x"]).within(&set(&["x:*"])), Permissions::default());
    }

    #[test]
    fn the_stored_form_is_sorted_and_round_trips() {
        let p = set(&["b", "a", "b", "c:*"]);
        assert_eq!(p.to_db(), "a b c:*");
        assert_eq!(Permissions::from_db(&p.to_db()), p);
        assert_eq!(Permissions::from_db(""), Permissions::default());
    }

    #[test]
    fn only_the_documented_shape_is_accepted() {
        for good in [
            "a",
            "billing:read",
            "x/y.z-w_1",
            "billing:*",
            "*",
            &"a".repeat(128),
        ] {
            assert!(is_valid(good), "{good:?}");
        }
        for bad in [
            "",
            "a b",
            "a*b",
            "**",
            "é",
            "a\n",
            &"a".repeat(129),
            "sk-admin-x y",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        let many: Vec<String> = (0..65).map(|n| format!("p{n}")).collect();
        assert!(Permissions::parse("permissions", &many).is_err());
        let err = Permissions::parse("permissions", &["ok".into(), "not ok".into()]).unwrap_err();
        assert!(!err.message.contains("not ok"));
        assert!(err.message.contains("permissions[1]"));
    }
}

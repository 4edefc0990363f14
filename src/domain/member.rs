//! Members' first and last names (seed 000's `firstName`, `lastName`) and the `name` derived
//! from them.
//!
//! Policy: upstream's `name` stays the one name everything shows (a key's owner, the audit
//! log). When a member is made without one, it is derived from the first and last names:
//! both joined by one space, or whichever of them is there. Each part is at most
//! [`MAX_PERSON_NAME_CHARS`] characters, so a derived name always fits a `name`'s bounds.

use super::{Invalid, KeyName};

/// The longest first or last name, in characters.
pub const MAX_PERSON_NAME_CHARS: usize = 100;

/// A first or last name: trimmed, 1 to [`MAX_PERSON_NAME_CHARS`] characters, no control or
/// invisible formatting characters (the rules of a key's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Trims `raw` and checks it; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<Self, Invalid> {
        if raw.trim().chars().count() > MAX_PERSON_NAME_CHARS {
            return Err(Invalid::new(
                param,
                format!("`{param}` must be at most {MAX_PERSON_NAME_CHARS} characters."),
            ));
        }
        Ok(Self(KeyName::parse(param, raw)?.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The `name` of a member whose first and last names are these: `first last`, or the one that
/// is there; `None` without either.
pub fn derived_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_derived_from_whichever_parts_there_are() {
        assert_eq!(
            derived_name(Some("Grace"), Some("Hopper")).as_deref(),
            Some("Grace Hopper")
        );
        assert_eq!(derived_name(Some("Grace"), None).as_deref(), Some("Grace"));
        assert_eq!(
            derived_name(None, Some("Hopper")).as_deref(),
            Some("Hopper")
        );
        assert_eq!(derived_name(None, None), None);
    }

    #[test]
    fn parts_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("first_name", "  Ada ").unwrap().as_str(),
            "Ada"
        );
        assert!(PersonName::parse("first_name", &"é".repeat(100)).is_ok());
        let long = PersonName::parse("last_name", &"é".repeat(101)).unwrap_err();
        assert_eq!(long.param, "last_name");
        assert!(PersonName::parse("first_name", " ").is_err());
        assert!(PersonName::parse("first_name", "A\u{200B}da").is_err());
    }
}

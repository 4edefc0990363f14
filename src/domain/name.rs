//! Names of keys (and of the owners `bootstrap` makes).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::Invalid;

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A trimmed name of 1 to 256 characters without control or invisible format characters
/// (Unicode categories Cc and Cf: bidirectional overrides, zero-width spaces and joiners, …),
/// so that no name can pose as another where people read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Trims `raw` and checks it; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new(param, format!("`{param}` must not be empty.")));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(
                param,
                format!("`{param}` must be at most {MAX_NAME_CHARS} characters."),
            ));
        }
        if name.chars().any(is_hidden) {
            return Err(Invalid::new(
                param,
                format!(
                    "`{param}` must not contain control characters or invisible formatting \
                     characters (such as bidirectional overrides or zero-width spaces)."
                ),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Like [`KeyName::parse`], for a field that must be present.
    pub fn required(param: &'static str, raw: Option<&str>) -> Result<Self, Invalid> {
        Self::parse(
            param,
            raw.ok_or_else(|| Invalid::new(param, format!("`{param}` is required.")))?,
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A control character, or a format character that changes how text shows without showing.
fn is_hidden(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(KeyName::parse("name", "  ci  ").unwrap().as_str(), "ci");
        let cases = [
            ("", "empty"),
            ("   ", "only spaces"),
            ("a\u{7}b", "control character"),
            ("admin\u{202E}txt.exe", "right-to-left override"),
            ("ad\u{200B}min", "zero-width space"),
            ("\u{2066}ci\u{2069}", "bidirectional isolates"),
            ("key\u{FEFF}", "zero-width no-break space"),
        ];
        for (raw, why) in cases {
            assert!(KeyName::parse("name", raw).is_err(), "{why}");
        }
        assert!(
            KeyName::parse("name", &"é".repeat(256)).is_ok(),
            "256 characters"
        );
        assert!(
            KeyName::parse("name", &"é".repeat(257)).is_err(),
            "257 characters"
        );
        assert_eq!(KeyName::required("name", None).unwrap_err().param, "name");
    }
}

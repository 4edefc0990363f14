//! Email addresses of members and invites.
//!
//! Policy: an address is checked for shape only (no mail is sent: there is no mail server in
//! this service), trimmed, put in Unicode normal form NFKC and lower-cased, so every
//! comparison is case-insensitive, a fullwidth `ｏｐｓ` is stored as `ops`, and the same on
//! both backends. A local part (before `@`) that mixes scripts, such as a Cyrillic `о` among
//! Latin letters, is refused: no real mailbox needs that, and it is how a look-alike of a
//! member's address is made (digits and punctuation belong to every script).
//!
//! The "already a member" and "already invited" checks compare [`Email::skeleton`]s, the
//! confusable skeleton of Unicode TS #39: look-alike addresses (`ops@example.com` and an
//! all-Cyrillic `орѕ@example.com`) have the same skeleton and are one address. The
//! `emails[]` filter of the users list compares the normalised addresses themselves.
//!
//! Both come from `unicode-security` (the unicode-rs project's implementation of TS #39, the
//! one rustc's own `confusable_idents` and `mixed_script_confusables` lints use, with the
//! Unicode data tables built in) and `unicode-normalization` (the same project's NFKC).

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;
use unicode_security::confusable_detection::skeleton;

use super::Invalid;

/// The longest address (RFC 5321's limit on a path).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A normalised email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks `raw` and normalises it; `param` names the field in the error.
    pub fn parse(param: &'static str, raw: &str) -> Result<Self, Invalid> {
        let invalid = || {
            Invalid::new(
                param,
                format!(
                    "`{param}` must be an email address such as `name@example.com` (at most \
                     {MAX_EMAIL_CHARS} characters)."
                ),
            )
        };
        // Lower-casing can leave a string that is no longer in NFKC (and NFKC can leave upper
        // case), hence normalise, lower-case, normalise.
        let email: String = raw
            .trim()
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect();
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(invalid());
        }
        if !local.is_single_script() {
            return Err(Invalid::new(
                param,
                format!(
                    "`{param}` mixes letters of different scripts (such as Latin and Cyrillic) \
                     before the `@`; an address must use the letters of one script there."
                ),
            ));
        }
        Ok(Self(email))
    }

    /// The confusable skeleton (Unicode TS #39) that uniqueness checks compare.
    pub fn skeleton(&self) -> String {
        skeleton_of(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The confusable skeleton of an address already normalised by [`Email::parse`] (as stored).
pub fn skeleton_of(normalised: &str) -> String {
    skeleton(normalised).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("email", "  Ada.Lovelace+keys@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace+keys@example.com");
    }

    #[test]
    fn fullwidth_and_compatibility_forms_are_stored_in_their_plain_form() {
        let email = Email::parse("email", "ｏｐｓ＠Ｅｘａｍｐｌｅ.ｃｏｍ").unwrap();
        assert_eq!(email.as_str(), "ops@example.com");
        let email = Email::parse("email", "\u{FB01}le@example.com").unwrap();
        assert_eq!(
            email.as_str(),
            "file@example.com",
            "the ligature ﬁ is two letters"
        );
    }

    #[test]
    fn look_alike_addresses_share_a_skeleton_and_others_do_not() {
        let plain = Email::parse("email", "ops@example.com").unwrap().skeleton();
        for look_alike in [
            "ｏｐｓ@example.com",
            "OPS@example.com",
            // Cyrillic о, р, ѕ: one script, so a valid address, but the same to the eye.
            "\u{43E}\u{440}\u{455}@example.com",
            // Cyrillic а in the domain.
            "ops@ex\u{430}mple.com",
        ] {
            let email = Email::parse("email", look_alike).unwrap();
            assert_eq!(email.skeleton(), plain, "{look_alike}");
        }
        for other in ["opt@example.com", "ops@example.org", "ops1@example.com"] {
            let email = Email::parse("email", other).unwrap();
            assert_ne!(email.skeleton(), plain, "{other}");
        }
    }

    #[test]
    fn a_local_part_mixing_scripts_is_refused_naming_the_field() {
        for raw in [
            "\u{43E}ps@example.com",
            "op\u{3C2}@example.com",
            "ad\u{430}.lovelace@example.com",
        ] {
            let error = Email::parse("email", raw).unwrap_err();
            assert_eq!(error.param, "email");
            assert!(error.message.contains("scripts"), "{error}");
        }
        for fine in [
            "\u{438}\u{432}\u{430}\u{43D}.2024@example.com",
            "\u{5C71}\u{7530}\u{305F}\u{308D}\u{3046}@example.jp",
            "ops-2+keys@example.com",
        ] {
            assert!(Email::parse("email", fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused_without_repeating_them() {
        for raw in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@exa mple.com",
            "a da@example.com",
            "ada@@example.com",
            ".ada@example.com",
            "ada..l@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada\u{0}@example.com",
            "sk-admin-secret@example.com\n",
        ] {
            match Email::parse("email", raw) {
                Ok(email) if raw.ends_with('\n') => {
                    // Surrounding whitespace is trimmed; the address itself is fine.
                    assert_eq!(email.as_str(), "sk-admin-secret@example.com");
                }
                Ok(email) => panic!("{raw:?} was accepted as {email:?}"),
                Err(e) => assert!(raw.len() < 13 || !e.message.contains(raw), "{e}"),
            }
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse("email", &long).is_err());
    }
}

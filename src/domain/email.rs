//! Email addresses of members and invites.
//!
//! Policy: an address is checked for shape only (no mail is sent: there is no mail server in
//! this service), trimmed and lower-cased, so every comparison (the `emails[]` filter, the
//! "already a member" and "already invited" checks) is case-insensitive and means the same on
//! both backends.

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
        let email = raw.trim().to_lowercase();
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
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
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

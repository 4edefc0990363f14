//! Members' phone numbers (seed 000's `phoneNumber`): E.164, and a number some country's
//! numbering plan actually assigns.
//!
//! Policy: the number must be sent in E.164 form already (`+`, the country code, the
//! subscriber number; digits only, at most 15), so what is stored is exactly what was sent and
//! two spellings of one number never both exist. Its validity is judged by the `phonenumber`
//! crate, the Rust port of Google's libphonenumber, whose numbering plans say which lengths
//! and ranges each country assigns: a hand-written pattern would accept `+10000000000`.

use super::Invalid;

/// The most digits E.164 allows after the `+`.
pub const MAX_PHONE_DIGITS: usize = 15;

/// A valid phone number in E.164 form, e.g. `+436761234567`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    /// Digits of the country calling code (1 to 3), for [`PhoneNumber::masked`].
    code_digits: usize,
}

impl PhoneNumber {
    /// Checks `raw`; `param` names the field in the error, which never repeats the value.
    pub fn parse(param: &'static str, raw: &str) -> Result<Self, Invalid> {
        let digits = raw.strip_prefix('+').unwrap_or_default();
        let shaped = (2..=MAX_PHONE_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !shaped {
            return Err(Invalid::new(
                param,
                format!(
                    "`{param}` must be a phone number in E.164 form: `+`, the country code and \
                     the number, digits only, at most {MAX_PHONE_DIGITS} (e.g. `+442071838750`)."
                ),
            ));
        }
        let unassigned = || {
            Invalid::new(
                param,
                format!(
                    "`{param}` is not a number its country's numbering plan assigns (wrong \
                     length or range for the country code); check the digits."
                ),
            )
        };
        let parsed = phonenumber::parse(None, raw).map_err(|_| unassigned())?;
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        if !phonenumber::is_valid(&parsed) || e164 != raw {
            return Err(unassigned());
        }
        Ok(Self {
            code_digits: parsed.code().value().to_string().len(),
            e164,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    pub fn into_string(self) -> String {
        self.e164
    }

    /// The country code and the last two digits, the rest hidden (`+43…67`): what the audit
    /// log keeps of a number, which nothing can delete from it.
    pub fn masked(&self) -> String {
        let code = &self.e164[..1 + self.code_digits];
        let last = &self.e164[self.e164.len() - 2..];
        format!("{code}…{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_e164_that_a_plan_assigns_are_accepted() {
        for raw in [
            "+436761234567",
            "+16502530000",
            "+442079460958",
            "+4915123456789",
        ] {
            let phone =
                PhoneNumber::parse("phone_number", raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(phone.as_str(), raw);
        }
    }

    #[test]
    fn anything_else_is_refused_without_repeating_it() {
        let cases = [
            ("", "empty"),
            ("436761234567", "no plus"),
            ("+43 676 1234567", "spaces"),
            ("+43-676-1234567", "hyphens"),
            ("+0436761234567", "a country code cannot start with 0"),
            ("+1234567890123456", "16 digits"),
            ("+43676123456a", "a letter"),
            ("+10000000000", "a North American number no plan assigns"),
            ("+43", "a country code alone"),
            ("+999123456789", "no such country code"),
        ];
        for (raw, why) in cases {
            let error = PhoneNumber::parse("phone_number", raw).expect_err(why);
            assert_eq!(error.param, "phone_number", "{why}");
            assert!(
                raw.len() < 3 || !error.message.contains(raw),
                "{why}: {error}"
            );
        }
    }

    #[test]
    fn the_masked_form_keeps_the_country_code_and_the_last_two_digits() {
        let phone = PhoneNumber::parse("phone_number", "+436761234567").unwrap();
        assert_eq!(phone.masked(), "+43…67");
        let phone = PhoneNumber::parse("phone_number", "+16502530000").unwrap();
        assert_eq!(phone.masked(), "+1…00");
    }
}

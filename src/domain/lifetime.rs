//! How long keys live: the bounds of a lifetime, what a request asks of a new key's end
//! ([`Expiry`]), and the organisation's policy that turns the ask into an `expires_at`
//! ([`LifetimePolicy`]).

use super::Invalid;

/// The longest lifetime a key can be given: 365 days.
pub const MAX_EXPIRES_IN_SECONDS: i64 = 31_536_000;
/// The longest overlap during which a rotated key keeps working: 7 days.
pub const MAX_OVERLAP_SECONDS: i64 = 604_800;

/// A key's lifetime in seconds from its creation; `None` never expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLifetime(Option<i64>);

impl KeyLifetime {
    /// `expires_in_seconds`: 1 to [`MAX_EXPIRES_IN_SECONDS`], or absent for no expiry.
    pub fn parse(seconds: Option<i64>) -> Result<Self, Invalid> {
        match seconds {
            Some(s) if !(1..=MAX_EXPIRES_IN_SECONDS).contains(&s) => Err(Invalid::new(
                "expires_in_seconds",
                format!(
                    "`expires_in_seconds` must be between 1 and {MAX_EXPIRES_IN_SECONDS}; leave it out for a key that does not expire."
                ),
            )),
            other => Ok(Self(other)),
        }
    }

    /// `expires_in_seconds` where `null` (no expiry) and absence (`None`: up to the caller)
    /// differ, as on rotation.
    pub fn parse_present(seconds: Option<Option<i64>>) -> Result<Option<Self>, Invalid> {
        seconds.map(Self::parse).transpose()
    }

    /// The lifetime a key made at `created_at` and expiring at `expires_at` was given.
    pub fn given(created_at: i64, expires_at: Option<i64>) -> Self {
        Self(expires_at.map(|at| (at - created_at).clamp(1, MAX_EXPIRES_IN_SECONDS)))
    }

    /// When a key made at `now` expires.
    pub fn expires_at(self, now: i64) -> Option<i64> {
        self.0.map(|seconds| now + seconds)
    }
}

/// What a request asks of a new key's end: `expires_in_seconds`, `expires_at` (seed 000's
/// `apiKeyExpiryDate`, seed 002's `expiresAt`, as Unix seconds like our objects show it), an
/// explicit "never" (rotation's `null`), or nothing (the organisation's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing asked: the policy's default.
    #[default]
    Default,
    /// Explicitly no expiry (rotation's `"expires_in_seconds": null`).
    Never,
    /// `expires_in_seconds`.
    In(i64),
    /// `expires_at`.
    At(i64),
}

impl Expiry {
    /// A create's `expires_in_seconds` and `expires_at` (each `None` when absent or `null`):
    /// at most one of them (400 naming both otherwise).
    pub fn parse(
        expires_in_seconds: Option<i64>,
        expires_at: Option<i64>,
    ) -> Result<Self, Invalid> {
        match (expires_in_seconds, expires_at) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "expires_at",
                "`expires_at` and `expires_in_seconds` both say when the key expires: send one \
                 of them, not both.",
            )),
            (Some(seconds), None) => Ok(Self::In(seconds)),
            (None, Some(at)) => Ok(Self::At(at)),
            (None, None) => Ok(Self::Default),
        }
    }

    /// What a rotation asks: `lifetime` when sent (`null` is [`Expiry::Never`]), else the
    /// lifetime the old key was given, within `policy` (a key that never expired keeps not
    /// expiring only where the policy allows it).
    pub fn rotated(
        lifetime: Option<KeyLifetime>,
        created_at: i64,
        expires_at: Option<i64>,
        policy: &LifetimePolicy,
    ) -> Self {
        match lifetime.map(|lifetime| lifetime.0) {
            Some(Some(seconds)) => Self::In(seconds),
            Some(None) => Self::Never,
            None => match KeyLifetime::given(created_at, expires_at).0 {
                Some(seconds) => Self::In(seconds.min(policy.longest())),
                None if policy.max_secs.is_some() => Self::Default,
                None => Self::Never,
            },
        }
    }
}

/// The organisation's policy for new keys of every kind (admin, project, service account), on
/// the model of GitHub's fine-grained token policy: a maximum lifetime and a default one.
/// Without a maximum, keys may be made that never expire, and a lifetime asked for is capped
/// at [`MAX_EXPIRES_IN_SECONDS`]; with one, every new key expires within it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifetimePolicy {
    /// `KEY_MAX_LIFETIME_SECS`: 1 to [`MAX_EXPIRES_IN_SECONDS`].
    pub max_secs: Option<i64>,
    /// `KEY_DEFAULT_LIFETIME_SECS`: the lifetime of a key made without asking; at most
    /// `max_secs`. Without it, such a key never expires, or under a maximum gets the maximum.
    pub default_secs: Option<i64>,
}

impl LifetimePolicy {
    /// A policy whose default fits within its maximum, both within the one-year cap.
    pub fn new(max_secs: Option<i64>, default_secs: Option<i64>) -> Result<Self, String> {
        for (name, value) in [("maximum", max_secs), ("default", default_secs)] {
            if value.is_some_and(|secs| !(1..=MAX_EXPIRES_IN_SECONDS).contains(&secs)) {
                return Err(format!(
                    "the {name} key lifetime must be 1 to {MAX_EXPIRES_IN_SECONDS} seconds"
                ));
            }
        }
        if let (Some(max), Some(default)) = (max_secs, default_secs)
            && default > max
        {
            return Err(format!(
                "the default key lifetime ({default} s) is longer than the maximum ({max} s)"
            ));
        }
        Ok(Self {
            max_secs,
            default_secs,
        })
    }

    /// `Err` with the reason when the default is longer than the maximum, or either is out
    /// of bounds (the server refuses to start).
    pub fn check(&self) -> Result<(), String> {
        Self::new(self.max_secs, self.default_secs).map(drop)
    }

    /// The longest lifetime a new key may be given, in seconds.
    pub fn longest(&self) -> i64 {
        self.max_secs.unwrap_or(MAX_EXPIRES_IN_SECONDS)
    }

    /// When a key made at `now` expires, as `asked` and this policy say; a 400 naming the
    /// field when the ask breaks the policy or the cap.
    pub fn expires_at(&self, asked: Expiry, now: i64) -> Result<Option<i64>, Invalid> {
        let longest = self.longest();
        match asked {
            Expiry::Default => Ok(self.default_secs.or(self.max_secs).map(|secs| now + secs)),
            Expiry::Never if self.max_secs.is_some() => Err(Invalid::new(
                "expires_in_seconds",
                format!(
                    "This organisation's policy gives every new key an expiry: send \
                     `expires_in_seconds` of at most {longest}, or leave it out for the default."
                ),
            )),
            Expiry::Never => Ok(None),
            Expiry::In(seconds) if (1..=longest).contains(&seconds) => Ok(Some(now + seconds)),
            Expiry::In(_) => Err(Invalid::new(
                "expires_in_seconds",
                format!(
                    "`expires_in_seconds` must be between 1 and {longest}{}.",
                    self.why()
                ),
            )),
            Expiry::At(at) if at > now && at - now <= longest => Ok(Some(at)),
            Expiry::At(_) => Err(Invalid::new(
                "expires_at",
                format!(
                    "`expires_at` must be a Unix time in seconds after now and at most {longest} \
                     seconds from now{}.",
                    self.why()
                ),
            )),
        }
    }

    fn why(&self) -> &'static str {
        if self.max_secs.is_some() {
            " (this organisation's maximum key lifetime)"
        } else {
            " (365 days)"
        }
    }
}

/// Whether `at` may become the `expires_at` of a key that now expires at `current` (`None`:
/// never) by update: an update shortens a key's life, never extends it, so `at` may not be
/// later than `current`. (Extending is a rotation, which mints a key under today's rules and
/// the caller's rights.) The policy's bounds from now are checked apart, at the edge.
pub fn only_earlier(at: i64, current: Option<i64>) -> Result<(), Invalid> {
    if current.is_some_and(|current| at > current) {
        return Err(Invalid::new(
            "expires_at",
            "An update can only move `expires_at` earlier, never later than the key's current \
             `expires_at`: rotate the key for one that lives longer.",
        ));
    }
    Ok(())
}

/// How long a rotated key keeps working, in seconds (0 to [`MAX_OVERLAP_SECONDS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overlap(i64);

impl Overlap {
    /// `previous_key_expires_in_seconds`; absent means 0 (the old key stops now).
    pub fn parse(seconds: Option<i64>) -> Result<Self, Invalid> {
        let seconds = seconds.unwrap_or(0);
        if !(0..=MAX_OVERLAP_SECONDS).contains(&seconds) {
            return Err(Invalid::new(
                "previous_key_expires_in_seconds",
                format!(
                    "`previous_key_expires_in_seconds` must be between 0 and {MAX_OVERLAP_SECONDS}."
                ),
            ));
        }
        Ok(Self(seconds))
    }

    /// The old key's new expiry: the end of the overlap, unless it already expires sooner.
    pub fn old_key_expires_at(self, now: i64, current: Option<i64>) -> i64 {
        let end = now + self.0;
        current.map_or(end, |at| at.min(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn without_a_policy_keys_may_never_expire_and_asks_are_capped_at_a_year() {
        let open = LifetimePolicy::default();
        assert_eq!(open.expires_at(Expiry::Default, NOW), Ok(None));
        assert_eq!(open.expires_at(Expiry::Never, NOW), Ok(None));
        assert_eq!(open.expires_at(Expiry::In(60), NOW), Ok(Some(NOW + 60)));
        let year = MAX_EXPIRES_IN_SECONDS;
        assert_eq!(
            open.expires_at(Expiry::At(NOW + year), NOW),
            Ok(Some(NOW + year))
        );
        for (asked, param) in [
            (Expiry::In(0), "expires_in_seconds"),
            (Expiry::In(year + 1), "expires_in_seconds"),
            (Expiry::At(NOW), "expires_at"),
            (Expiry::At(NOW - 1), "expires_at"),
            (Expiry::At(NOW + year + 1), "expires_at"),
        ] {
            let refused = open.expires_at(asked, NOW).unwrap_err();
            assert_eq!(refused.param, param, "{asked:?}");
        }
    }

    #[test]
    fn a_policy_bounds_every_ask_and_fills_in_its_default() {
        let policy = LifetimePolicy::new(Some(3600), Some(600)).unwrap();
        assert_eq!(policy.expires_at(Expiry::Default, NOW), Ok(Some(NOW + 600)));
        assert!(policy.expires_at(Expiry::Never, NOW).is_err());
        assert!(policy.expires_at(Expiry::In(3601), NOW).is_err());
        assert!(policy.expires_at(Expiry::At(NOW + 3601), NOW).is_err());
        let max_only = LifetimePolicy::new(Some(3600), None).unwrap();
        assert_eq!(
            max_only.expires_at(Expiry::Default, NOW),
            Ok(Some(NOW + 3600))
        );
        assert!(LifetimePolicy::new(Some(60), Some(61)).is_err());
        assert!(LifetimePolicy::new(Some(0), None).is_err());
    }

    #[test]
    fn an_update_only_shortens() {
        assert_eq!(only_earlier(NOW + 10, Some(NOW + 20)), Ok(()));
        assert_eq!(only_earlier(NOW + 20, Some(NOW + 20)), Ok(()));
        assert_eq!(
            only_earlier(NOW + 21, Some(NOW + 20)).unwrap_err().param,
            "expires_at"
        );
        assert_eq!(
            only_earlier(NOW + 10, None),
            Ok(()),
            "a key that never expired"
        );
    }

    #[test]
    fn a_rotation_inherits_within_the_policy() {
        let open = LifetimePolicy::default();
        let capped = LifetimePolicy::new(Some(100), None).unwrap();
        let old = Some(NOW + 500);
        assert_eq!(Expiry::rotated(None, NOW, old, &open), Expiry::In(500));
        assert_eq!(Expiry::rotated(None, NOW, old, &capped), Expiry::In(100));
        assert_eq!(Expiry::rotated(None, NOW, None, &open), Expiry::Never);
        assert_eq!(Expiry::rotated(None, NOW, None, &capped), Expiry::Default);
        let null = Some(KeyLifetime::parse(None).unwrap());
        assert_eq!(Expiry::rotated(null, NOW, old, &open), Expiry::Never);
    }
}

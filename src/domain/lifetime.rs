//! How long keys live.

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

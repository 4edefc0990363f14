//! Identifiers of the objects this service makes: a type prefix and 24 random base62
//! characters (142 bits) from the thread-local CSPRNG.

use rand::RngExt;
use rand::distr::Alphanumeric;

/// Prefix of admin key ids.
pub const KEY: &str = "key_";
/// Prefix of user ids.
pub const USER: &str = "user_";
/// Prefix of invite ids (OpenAI's shape).
pub const INVITE: &str = "invite-";
/// Prefix of audit log entry ids (OpenAI's shape).
pub const AUDIT_LOG: &str = "audit_log-";
/// Prefix of project ids (OpenAI's shape).
pub const PROJECT: &str = "proj_";

/// Prefix of service account ids (OpenAI's shape).
pub const SERVICE_ACCOUNT: &str = "svc_acct_";

/// A random identifier such as `key_…` or `user_…`.
pub fn random_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    id.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(24)
            .map(char::from),
    );
    id
}

/// `id` if it has exactly the shape of an id this service makes (a known prefix and 24
/// letters or digits), so that an error message may repeat it; `None` for anything else (it
/// may be a secret pasted into the wrong place).
pub fn ours(id: &str) -> Option<&str> {
    let random = [KEY, USER, INVITE, AUDIT_LOG, PROJECT, SERVICE_ACCOUNT]
        .iter()
        .find_map(|prefix| id.strip_prefix(prefix))?;
    (random.len() == 24 && random.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

/// Whether `id` could be one of ours (short, ASCII letters, digits, `_` and `-`). Anything
/// else cannot exist and never reaches the database.
pub fn plausible(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_of_our_exact_shape_may_be_repeated() {
        let id = random_id(KEY);
        assert_eq!(ours(&id), Some(id.as_str()));
        assert!(ours(&random_id(AUDIT_LOG)).is_some());
        assert!(ours("key_short").is_none());
        assert!(ours(&format!("{id}x")).is_none());
        assert!(ours("sk-admin-4fTz9QbLw2Xc7VnR1kJm8HsD").is_none());
    }
}

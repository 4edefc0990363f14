//! Identifiers of the objects this service makes: a type prefix and 24 random base62
//! characters (142 bits) from the thread-local CSPRNG.

use rand::RngExt;
use rand::distr::Alphanumeric;

/// Prefix of admin key ids.
pub const KEY: &str = "key_";
/// Prefix of user ids.
pub const USER: &str = "user_";
/// Prefix of audit log entry ids (OpenAI's shape).
pub const AUDIT_LOG: &str = "audit_log-";

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

/// Whether `id` could be one of ours (short, ASCII letters, digits, `_` and `-`). Anything
/// else cannot exist and never reaches the database.
pub fn plausible(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

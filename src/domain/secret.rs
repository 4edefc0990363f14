//! The admin key format, its generation and hashing.
//!
//! Format: `sk-admin-` + 40 base62 characters from a CSPRNG (238 bits) + 6 base62 characters
//! encoding the CRC32 of everything before them. The checksum lets this service (and secret
//! scanners) reject a mistyped or invented key without touching the database.
//!
//! Policy: the plaintext exists only inside [`ApiKeySecret`], whose `Debug` and `Display`
//! redact it; only its SHA-256 is stored.

use std::fmt;

use rand::RngExt;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// SHA-256 of a presented key.
pub type KeyDigest = [u8; 32];

/// Every key starts with this.
pub const KEY_PREFIX: &str = "sk-admin-";
/// Random base62 characters after the prefix: 62^40 ≈ 2^238.
pub const KEY_RANDOM_LEN: usize = 40;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
pub const KEY_CHECKSUM_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A plaintext admin key. Shown once, in the create response; redacted everywhere else.
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// The plaintext, for the one response that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 under which the key is stored.
    pub fn hash(&self) -> String {
        hash_key(&self.0)
    }

    /// The display form: first 8 characters, `...`, last 3 (`sk-admin...xyz`).
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({})", self.redacted())
    }
}

impl fmt::Display for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Draws a new key from the thread-local CSPRNG (ChaCha12 seeded from the OS).
pub fn generate_key() -> ApiKeySecret {
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(KEY_PREFIX);
    key.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(KEY_RANDOM_LEN)
            .map(char::from),
    );
    let checksum = base62_checksum(&key);
    key.extend(checksum.iter().map(|&b| char::from(b)));
    ApiKeySecret(key)
}

fn base62_checksum(body: &str) -> [u8; KEY_CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; KEY_CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// True when `token` has the prefix, length, alphabet and checksum of a key we issue.
pub fn is_well_formed(token: &str) -> bool {
    // ASCII first: the split below must fall on a character boundary.
    if token.len() != KEY_LEN || !token.is_ascii() || !token.starts_with(KEY_PREFIX) {
        return false;
    }
    let (body, checksum) = token.split_at(KEY_LEN - KEY_CHECKSUM_LEN);
    token[KEY_PREFIX.len()..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
        && base62_checksum(body) == checksum.as_bytes()
}

/// Lowercase hex SHA-256 of the key: the form stored in the database.
pub fn hash_key(token: &str) -> String {
    hex(&digest_key(token))
}

/// SHA-256 of the key, as the auth cache keys it.
pub fn digest_key(token: &str) -> KeyDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex of a digest.
pub fn hex(digest: &KeyDigest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

fn redact(token: &str) -> String {
    let head: String = token.chars().take(8).collect();
    let tail: String = token
        .chars()
        .skip(token.chars().count().saturating_sub(3))
        .collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert!(is_well_formed(a.expose()), "{a:?}");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), KEY_LEN);
    }

    #[test]
    fn a_single_changed_character_breaks_the_checksum() {
        let key = generate_key();
        let mut bytes = key.expose().as_bytes().to_vec();
        bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(std::str::from_utf8(&bytes).unwrap()));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let key = generate_key();
        let good = key.expose();
        let cases = [
            ("", "empty"),
            ("sk-admin-", "prefix only"),
            (&good[..KEY_LEN - 1], "one short"),
            (&format!("{good}a"), "one long"),
            (&good.replacen("sk-admin-", "sk-proj--", 1), "wrong prefix"),
            (&format!("{}!{}", &good[..20], &good[21..]), "bad alphabet"),
            (
                &format!("{}é{}", &good[..47], &good[49..]),
                "non-ASCII at the checksum split",
            ),
        ];
        for (token, why) in cases {
            assert!(!is_well_formed(token), "{why}: {token:?} was accepted");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let key = generate_key();
        let shown = format!("{key:?} {key}");
        assert!(!shown.contains(&key.expose()[9..]), "{shown}");
        assert!(key.redacted().starts_with("sk-admin..."));
        assert_eq!(key.redacted().len(), 14);
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The key formats, their generation and hashing.
//!
//! Format: a prefix saying what the key is (`sk-admin-` for admin keys, `sk-proj-` for a
//! project key owned by a member, `sk-svcacct-` for a service account's key) + 40 base62 characters from a CSPRNG (238 bits) + 6 base62 characters
//! encoding the CRC32 of everything before them. The checksum lets this service (and secret
//! scanners) reject a mistyped or invented key without touching the database.
//!
//! Policy: the plaintext exists only inside [`ApiKeySecret`], whose `Debug` and `Display`
//! redact it; only its SHA-256 is stored. Text that may carry a secret pasted by a client (a
//! request target, say) goes through [`redact_secrets`] before it is logged.

use std::borrow::Cow;
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
/// Every project key owned by a project member starts with this.
pub const PROJECT_KEY_PREFIX: &str = "sk-proj-";
/// Total length of a member's project key.
pub const PROJECT_KEY_LEN: usize = PROJECT_KEY_PREFIX.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN;
/// Every service account's key starts with this.
pub const SERVICE_ACCOUNT_KEY_PREFIX: &str = "sk-svcacct-";
/// Total length of a service account's key.
pub const SERVICE_ACCOUNT_KEY_LEN: usize =
    SERVICE_ACCOUNT_KEY_PREFIX.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN;
/// Every invite's accept token starts with this; the rest is shaped like a key's.
pub const INVITE_TOKEN_PREFIX: &str = "sk-invite-";
/// Total length of an accept token.
pub const INVITE_TOKEN_LEN: usize = INVITE_TOKEN_PREFIX.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A plaintext secret we issue (an admin key, or an invite's accept token). Shown once, in the
/// response that creates it; redacted everywhere else.
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
    generate(KEY_PREFIX)
}

/// What kind of key a presented secret says it is, by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `sk-admin-`: authenticates this API.
    Admin,
    /// `sk-proj-`: a project key owned by a member.
    Project,
    /// `sk-svcacct-`: a project key owned by a service account.
    ServiceAccount,
}

impl KeyFormat {
    /// The prefix of keys of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Admin => KEY_PREFIX,
            Self::Project => PROJECT_KEY_PREFIX,
            Self::ServiceAccount => SERVICE_ACCOUNT_KEY_PREFIX,
        }
    }

    /// The kind of key `token` is, if it has the prefix, length, alphabet and checksum of one
    /// we issue.
    pub fn of(token: &str) -> Option<Self> {
        [Self::Admin, Self::Project, Self::ServiceAccount]
            .into_iter()
            .find(|format| well_formed(token, format.prefix()))
    }

    /// True for the keys kept in `project_api_keys`.
    pub fn is_project(self) -> bool {
        self != Self::Admin
    }
}

/// Draws a new project key of `format` (a member's or a service account's).
pub fn generate_project_key(format: KeyFormat) -> ApiKeySecret {
    generate(format.prefix())
}

/// Draws a new invite accept token, like a key but with its own prefix.
pub fn generate_invite_token() -> ApiKeySecret {
    generate(INVITE_TOKEN_PREFIX)
}

fn generate(prefix: &str) -> ApiKeySecret {
    let mut key = String::with_capacity(prefix.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN);
    key.push_str(prefix);
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

/// True when `token` has the prefix, length, alphabet and checksum of an admin key we issue.
pub fn is_well_formed(token: &str) -> bool {
    well_formed(token, KEY_PREFIX)
}

/// True when `token` has the shape of an invite accept token we issue.
pub fn is_well_formed_invite_token(token: &str) -> bool {
    well_formed(token, INVITE_TOKEN_PREFIX)
}

fn well_formed(token: &str, prefix: &str) -> bool {
    let len = prefix.len() + KEY_RANDOM_LEN + KEY_CHECKSUM_LEN;
    // ASCII first: the split below must fall on a character boundary.
    if token.len() != len || !token.is_ascii() || !token.starts_with(prefix) {
        return false;
    }
    let (body, checksum) = token.split_at(len - KEY_CHECKSUM_LEN);
    token[prefix.len()..]
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
    let head: String = token.chars().take(REDACTED_HEAD).collect();
    let tail: String = token
        .chars()
        .skip(token.chars().count().saturating_sub(REDACTED_TAIL))
        .collect();
    format!("{head}...{tail}")
}

/// Characters a redacted secret keeps from its start and from its end.
const REDACTED_HEAD: usize = 8;
const REDACTED_TAIL: usize = 3;

/// The outline of one kind of secret this service issues, as [`redact_secrets`] finds it.
struct SecretShape {
    /// What every such secret starts with; matched ignoring ASCII case.
    prefix: &'static str,
    /// Its full length. A shorter run keeps no tail when redacted: a truncated secret's last
    /// characters are not the ones the redacted form of the real secret shows.
    len: usize,
}

/// Every kind of secret this service issues. A new kind of token (invites, say) adds one line
/// here, and from then on it is redacted wherever [`redact_secrets`] is applied.
const SECRET_SHAPES: &[SecretShape] = &[
    SecretShape {
        prefix: KEY_PREFIX,
        len: KEY_LEN,
    },
    SecretShape {
        prefix: INVITE_TOKEN_PREFIX,
        len: INVITE_TOKEN_LEN,
    },
    SecretShape {
        prefix: PROJECT_KEY_PREFIX,
        len: PROJECT_KEY_LEN,
    },
    SecretShape {
        prefix: SERVICE_ACCOUNT_KEY_PREFIX,
        len: SERVICE_ACCOUNT_KEY_LEN,
    },
];

/// `text` with every secret-shaped run replaced by its redacted form.
///
/// A run is one of our prefixes (ignoring ASCII case) followed by at least one base62
/// character, and extends over every base62 character that follows. Whether it is a whole
/// key, a truncated one or one with a wrong checksum does not matter: it is redacted all the
/// same. A run of full length or longer shows what [`ApiKeySecret::redacted`] shows (first 8
/// characters, `...`, last 3); a shorter one shows only its start (`sk-admin...`). Borrows
/// `text` when it holds nothing to redact.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut found = find_secret(text, 0);
    while let Some((start, shape)) = found {
        let body = start + shape.prefix.len();
        let mut end = body
            + text.as_bytes()[body..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
        // The next secret may begin inside this run (`...Xsk-admin-...`): stop there so
        // that its prefix is seen and its body is redacted too.
        found = find_secret(text, start + 1);
        if let Some((next, _)) = found {
            end = end.min(next);
        }
        let run = &text[start..end];
        if run.len() > shape.prefix.len() {
            if out.is_empty() {
                out.reserve(text.len());
            }
            out.push_str(&text[copied..start]);
            out.push_str(&run[..REDACTED_HEAD.min(shape.prefix.len())]);
            out.push_str("...");
            if run.len() >= shape.len {
                out.push_str(&run[run.len() - REDACTED_TAIL..]);
            }
            copied = end;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The first byte of every secret prefix (checked at compile time below), in either case.
const PREFIX_START: (u8, u8) = (b's', b'S');

const _: () = {
    let mut i = 0;
    while i < SECRET_SHAPES.len() {
        let first = SECRET_SHAPES[i].prefix.as_bytes()[0];
        assert!(first == PREFIX_START.0 || first == PREFIX_START.1);
        i += 1;
    }
};

/// The first position at or after `from` where one of the secret prefixes starts.
///
/// `memchr2` jumps (SIMD, a word at a time) to the next byte that can start a prefix, an
/// `s` or an `S`, and only there are the prefixes compared: a line with no `s` costs a pass
/// of a few instructions per 16 bytes rather than a comparison per byte and prefix.
fn find_secret(text: &str, from: usize) -> Option<(usize, &'static SecretShape)> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(offset) = memchr::memchr2(PREFIX_START.0, PREFIX_START.1, bytes.get(at..)?) {
        let i = at + offset;
        let shape = SECRET_SHAPES.iter().find(|shape| {
            bytes[i..]
                .get(..shape.prefix.len())
                .is_some_and(|candidate| candidate.eq_ignore_ascii_case(shape.prefix.as_bytes()))
        });
        if let Some(shape) = shape {
            return Some((i, shape));
        }
        at = i + 1;
    }
    None
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
    fn redact_secrets_borrows_text_without_secrets() {
        for text in [
            "",
            "/v1/organization/admin_api_keys/key_abc",
            "sk-admin-",
            "sk-admin-...",
        ] {
            assert!(
                matches!(redact_secrets(text), Cow::Borrowed(t) if t == text),
                "{text:?} was changed"
            );
        }
    }

    #[test]
    fn redact_secrets_shows_a_whole_key_as_its_redacted_value() {
        let key = generate_key();
        let text = format!("/v1/organization/admin_api_keys/{}/rotate", key.expose());
        assert_eq!(
            redact_secrets(&text),
            format!("/v1/organization/admin_api_keys/{}/rotate", key.redacted())
        );
    }

    #[test]
    fn redact_secrets_replaces_every_secret_shaped_run() {
        let key = generate_key();
        let good = key.expose();
        let body = &good[KEY_PREFIX.len()..];
        let bad_checksum = format!("{}000000", &good[..KEY_LEN - KEY_CHECKSUM_LEN]);
        let cases = [
            (good.to_owned(), key.redacted(), "a whole key"),
            (
                good[..20].to_owned(),
                "sk-admin...".to_owned(),
                "a truncated key",
            ),
            (
                "sk-admin-x".to_owned(),
                "sk-admin...".to_owned(),
                "one character",
            ),
            (
                bad_checksum.clone(),
                format!("sk-admin...{}", &bad_checksum[KEY_LEN - 3..]),
                "a wrong checksum",
            ),
            (
                format!("{good}XYZ"),
                "sk-admin...XYZ".to_owned(),
                "a key run on into more base62",
            ),
            (
                format!("a={good}&b={good}"),
                format!("a={0}&b={0}", key.redacted()),
                "two keys",
            ),
            (
                format!("{good}{good}"),
                format!("{0}{0}", key.redacted()),
                "two keys without a separator",
            ),
            (
                format!("sk-admin-ab{good}"),
                format!("sk-admin...{}", key.redacted()),
                "a truncated key right before a whole one",
            ),
            (
                format!("SK-Admin-{body}"),
                format!("SK-Admin...{}", &good[KEY_LEN - 3..]),
                "a prefix in another case",
            ),
            (
                format!("ké{good}é"),
                format!("ké{}é", key.redacted()),
                "non-ASCII around it",
            ),
        ];
        for (text, expected, why) in cases {
            let redacted = redact_secrets(&text);
            assert_eq!(redacted, expected, "{why}");
            assert!(!redacted.contains(&body[..8]), "{why}: {redacted}");
        }
    }

    #[test]
    fn invite_tokens_have_their_own_shape_and_are_redacted_too() {
        let token = generate_invite_token();
        assert!(is_well_formed_invite_token(token.expose()));
        assert!(!is_well_formed(token.expose()), "a token is not a key");
        assert!(!is_well_formed_invite_token(generate_key().expose()));
        assert_eq!(token.expose().len(), INVITE_TOKEN_LEN);
        let text = format!("token={}", token.expose());
        assert_eq!(redact_secrets(&text), format!("token={}", token.redacted()));
        assert!(!redact_secrets(&text).contains(&token.expose()[12..20]));
    }

    #[test]
    fn project_and_service_account_keys_have_their_own_shapes_and_are_redacted_too() {
        for (format, len) in [
            (KeyFormat::Project, PROJECT_KEY_LEN),
            (KeyFormat::ServiceAccount, SERVICE_ACCOUNT_KEY_LEN),
        ] {
            let key = generate_project_key(format);
            assert_eq!(key.expose().len(), len);
            assert_eq!(KeyFormat::of(key.expose()), Some(format));
            assert!(
                !is_well_formed(key.expose()),
                "{format:?} is not an admin key"
            );
            let mut bytes = key.expose().as_bytes().to_vec();
            bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
            assert_eq!(KeyFormat::of(std::str::from_utf8(&bytes).unwrap()), None);
            let text = format!("key={} and {}", key.expose(), &key.expose()[..15]);
            let redacted = redact_secrets(&text);
            assert_eq!(
                redacted,
                format!("key={} and {}...", key.redacted(), &key.expose()[..8])
            );
            assert!(!redacted.contains(&key.expose()[12..20]), "{redacted}");
        }
        assert_eq!(
            KeyFormat::of(generate_key().expose()),
            Some(KeyFormat::Admin)
        );
        assert!(
            generate_project_key(KeyFormat::Project)
                .redacted()
                .starts_with("sk-proj-...")
        );
    }

    #[test]
    fn a_secret_is_found_after_any_number_of_near_misses() {
        let key = generate_key();
        let text = format!("s sk sK- Sk-admi sk-invite- SS{} ss", key.expose());
        assert_eq!(
            redact_secrets(&text),
            format!("s sk sK- Sk-admi sk-invite- SS{} ss", key.redacted())
        );
        let upper = key.expose().to_ascii_uppercase();
        assert_eq!(
            redact_secrets(&format!("..{upper}")),
            format!("..SK-ADMIN...{}", &upper[upper.len() - 3..])
        );
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

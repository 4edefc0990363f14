//! The `Idempotency-Key` request header, and the server secret that seals the answers kept
//! for its replays.
//!
//! Policy: the header's value is never repeated, logged or stored (only its SHA-256 is); a
//! malformed one is a 400 naming the header. The secret is 32 random bytes given as 64 hex
//! digits; its `Debug` shows nothing of it.

use actix_web::http::header::HeaderMap;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The header's name, as documented.
pub const HEADER: &str = "Idempotency-Key";
/// The longest accepted value, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A valid `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

impl IdempotencyKey {
    /// The request's `Idempotency-Key`, if it sent one; a 400 if it is empty, too long, not
    /// visible ASCII, or sent more than once.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid(
                "`Idempotency-Key` is given more than once; send it once per request.",
            ));
        }
        Self::parse(value.as_bytes()).map(Some)
    }

    /// Checks one header value.
    pub fn parse(value: &[u8]) -> Result<Self, ApiError> {
        let visible = value.iter().all(|b| (0x21..=0x7e).contains(b));
        if value.is_empty() || value.len() > MAX_IDEMPOTENCY_KEY_CHARS || !visible {
            return Err(invalid(
                "`Idempotency-Key` must be 1 to 255 visible ASCII characters (no spaces), such \
                 as a UUID; make one per operation and send it again only to retry it.",
            ));
        }
        // All visible ASCII, so valid UTF-8.
        Ok(Self(String::from_utf8_lossy(value).into_owned()))
    }

    /// Lowercase hex SHA-256 of the value: the form stored.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidRequest {
        message: message.to_owned(),
        param: Some(HEADER.to_owned()),
        code: Some("invalid_idempotency_key"),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Seals the answers kept for replays with the server's `IDEMPOTENCY_KEY_SECRET`:
/// XChaCha20-Poly1305 with a random 192-bit nonce per answer, bound (as associated data) to
/// the record it belongs to, so the database alone can neither read an answer nor move one to
/// another record.
#[derive(Clone)]
pub struct ResponseSealer(XChaCha20Poly1305);

impl std::fmt::Debug for ResponseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseSealer(..)")
    }
}

const NONCE_BYTES: usize = 24;

impl ResponseSealer {
    /// A sealer from 64 hex digits (32 bytes; surrounding whitespace is ignored, so a file
    /// written by `openssl rand -hex 32` works as is).
    pub fn from_hex(secret: &str) -> Result<Self, String> {
        let bytes = unhex(secret.trim())
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| {
                "must be 64 hex digits (32 random bytes), e.g. from `openssl rand -hex 32`"
                    .to_owned()
            })?;
        Ok(Self(XChaCha20Poly1305::new(Key::from_slice(&bytes))))
    }

    /// `plaintext` sealed for `context`, as hex of the nonce then the ciphertext.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<String, ApiError> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| ApiError::Internal("cannot seal an idempotent answer".into()))?;
        Ok(hex(&nonce) + &hex(&sealed))
    }

    /// What [`ResponseSealer::seal`] sealed for `context`; `None` if `sealed` was not sealed
    /// by this secret for this context (another secret, or a changed row).
    pub fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = unhex(sealed)?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn idempotency_keys_are_1_to_255_visible_ascii_characters() {
        let long = "k".repeat(255);
        let too_long = "k".repeat(256);
        for (value, ok, why) in [
            ("a", true, "one character"),
            ("8e3c1c1e-7b1a-4c55-9a39-2f3d0b6a1c2d", true, "a UUID"),
            ("!~", true, "punctuation is visible ASCII"),
            (long.as_str(), true, "255 characters"),
            ("", false, "empty"),
            (too_long.as_str(), false, "256 characters"),
            ("a b", false, "a space"),
            ("a\tb", false, "a tab"),
            ("é", false, "not ASCII"),
        ] {
            assert_eq!(IdempotencyKey::parse(value.as_bytes()).is_ok(), ok, "{why}");
        }
    }

    #[test]
    fn a_sealed_answer_opens_only_with_its_secret_and_context() {
        let sealer = ResponseSealer::from_hex(SECRET).unwrap();
        let other = ResponseSealer::from_hex(&SECRET.replace("00", "ff")).unwrap();
        let sealed = sealer.seal(b"row 1", b"sk-admin-secret").unwrap();

        assert!(!sealed.contains(&hex(b"sk-admin-secret")), "not in clear");
        assert_eq!(
            sealer.open(b"row 1", &sealed).as_deref(),
            Some(&b"sk-admin-secret"[..])
        );
        assert_eq!(sealer.open(b"row 2", &sealed), None, "another record");
        assert_eq!(other.open(b"row 1", &sealed), None, "another secret");
        assert_ne!(
            sealed,
            sealer.seal(b"row 1", b"sk-admin-secret").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn the_secret_must_be_64_hex_digits() {
        assert!(ResponseSealer::from_hex(&format!(" {SECRET}\n")).is_ok());
        for bad in [
            "",
            "00",
            &SECRET[..62],
            &format!("{SECRET}00"),
            &SECRET.replace('0', "g"),
        ] {
            assert!(ResponseSealer::from_hex(bad).is_err(), "{bad:?}");
        }
    }
}

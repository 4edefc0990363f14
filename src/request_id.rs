//! The id of each request, returned as `X-Request-Id` on every response and carried by each
//! log line of the request (`request_id`, see `telemetry`).
//!
//! Policy. A client's (or proxy's) own `X-Request-Id` is kept when it is one header of 1 to
//! [`MAX_LEN`] characters from `A-Z a-z 0-9 - _ . :` and not shaped like one of our secrets
//! (a key pasted there would be echoed back and logged). Anything else is replaced by an id
//! of ours, and is neither echoed nor logged.
//!
//! Ours are `req_`, 12 letters and digits drawn once per process from the CSPRNG, and a
//! 12-hex-digit count of the ids this process made: unique across processes as the random
//! part is (71 bits), and unique within one until 2^48 requests, without drawing random
//! numbers per request. They are not secrets: two of them tell a client how many ids the
//! process made in between, and nothing more.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{Error, HttpResponse, ResponseError};

use crate::domain::secret::redact_secrets;
use crate::ids::random_id;

/// The header that carries the id both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest incoming id that is kept.
pub const MAX_LEN: usize = 64;
/// What an id this service makes starts with.
const PREFIX: &str = "req_";
/// How many hex digits of the count an id of ours carries.
const COUNT_DIGITS: usize = 12;
/// The length of an id of ours.
const LEN: usize = PREFIX.len() + 12 + COUNT_DIGITS;

/// `req_` and this process's random part, drawn on first use.
static PROCESS_PART: OnceLock<String> = OnceLock::new();
/// Ids this process made so far.
static MADE: AtomicU64 = AtomicU64::new(0);

/// A request's id: the incoming one if safe, else one of ours. Given to each request, and
/// put on its response, by `telemetry::access`.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id for a request with these headers.
    pub fn for_headers(headers: &HeaderMap) -> Self {
        let mut given = headers.get_all(&X_REQUEST_ID);
        match (given.next(), given.next()) {
            (Some(value), None) if is_safe(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    /// A fresh id of ours.
    pub fn generate() -> Self {
        let process = PROCESS_PART.get_or_init(|| {
            let mut part = random_id(PREFIX);
            part.truncate(LEN - COUNT_DIGITS);
            part
        });
        let count = MADE.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; LEN];
        id[..process.len()].copy_from_slice(process.as_bytes());
        for (i, digit) in id[process.len()..].iter_mut().rev().enumerate() {
            *digit = b"0123456789abcdef"[((count >> (4 * i)) & 0xf) as usize];
        }
        Self(HeaderValue::from_bytes(&id).expect("letters and digits"))
    }

    /// The id as a header value.
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ever made of the safe ASCII characters.
        self.0.to_str().unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an incoming id may be kept: see the module policy.
fn is_safe(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        && std::str::from_utf8(id)
            .is_ok_and(|id| matches!(redact_secrets(id), std::borrow::Cow::Borrowed(_)))
}

/// An error from inner services whose response carries the request id. (The request cannot
/// be kept here to answer with: the router needs it to be the only reference.)
#[derive(Debug)]
pub struct WithRequestId {
    pub error: Error,
    pub id: RequestId,
}

impl std::fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for WithRequestId {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        response
            .headers_mut()
            .insert(X_REQUEST_ID, self.id.0.clone());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::{generate_invite_token, generate_key};

    #[test]
    fn ids_of_safe_characters_up_to_64_long_are_kept() {
        for id in ["a", "trace-01:abc_DEF.9", &"x".repeat(MAX_LEN)] {
            assert!(is_safe(id.as_bytes()), "{id:?}");
        }
    }

    #[test]
    fn other_ids_are_replaced() {
        let key = generate_key();
        let token = generate_invite_token();
        let cases = [
            ("", "empty"),
            (&"x".repeat(MAX_LEN + 1) as &str, "too long"),
            ("a b", "a space"),
            ("a/b", "a slash"),
            ("<script>", "markup"),
            ("é", "non-ASCII"),
            ("a\"b", "a quote"),
            (key.expose(), "an admin key"),
            (token.expose(), "an invite token"),
        ];
        for (id, why) in cases {
            assert!(!is_safe(id.as_bytes()), "{why}");
        }
    }

    #[test]
    fn a_request_with_several_ids_gets_one_of_ours() {
        let mut headers = HeaderMap::new();
        headers.append(X_REQUEST_ID, HeaderValue::from_static("one"));
        headers.append(X_REQUEST_ID, HeaderValue::from_static("two"));
        let id = RequestId::for_headers(&headers);
        assert!(id.as_str().starts_with(PREFIX), "{id}");
        assert_eq!(id.as_str().len(), PREFIX.len() + 24);
    }

    #[test]
    fn ids_of_ours_share_the_process_part_and_never_repeat() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str()[..16], b.as_str()[..16]);
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), 28, "{id}");
            assert!(is_safe(id.as_str().as_bytes()), "{id}");
        }
    }
}

//! The headers forward auth answers a good key with, rendered once when the key's cache entry
//! is filled: a check then clones a handful of shared values instead of joining scopes,
//! formatting permissions and validating every byte of every value on each request.
//!
//! What they say depends only on the entry (the key, its owner's role and ceiling, its
//! project), so anything that changes them drops the entry and the next fill renders them
//! afresh, as for the rest of the entry.

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};

/// The key's id.
pub const KEY_ID: HeaderName = HeaderName::from_static("x-api-key-id");
/// The id of the key's owner.
pub const OWNER_ID: HeaderName = HeaderName::from_static("x-api-key-owner-id");
/// What owns the key, `user` or `service_account`.
pub const OWNER_TYPE: HeaderName = HeaderName::from_static("x-api-key-owner-type");
/// The key's effective scopes, space-separated.
pub const SCOPES: HeaderName = HeaderName::from_static("x-api-key-scopes");
/// The key's permissions (a project key: its scopes), space-separated.
pub const PERMISSIONS: HeaderName = HeaderName::from_static("x-api-key-permissions");
/// The project of a project key.
pub const PROJECT_ID: HeaderName = HeaderName::from_static("x-api-key-project-id");

/// A key's forward-auth headers, or which one could not be rendered (a stored value that is
/// not a valid header value: never expected, since ids, scopes and permissions are checked
/// when stored, and answered 500 rather than sent without it).
#[derive(Debug)]
pub struct VerdictHeaders(Result<Box<[(HeaderName, HeaderValue)]>, HeaderName>);

impl VerdictHeaders {
    /// Renders `pairs` once.
    pub fn render<const N: usize>(pairs: [(HeaderName, &str); N]) -> Self {
        let mut rendered = Vec::with_capacity(N);
        for (name, value) in pairs {
            match HeaderValue::from_str(value) {
                Ok(value) => rendered.push((name, value)),
                Err(_) => return Self(Err(name)),
            }
        }
        Self(Ok(rendered.into_boxed_slice()))
    }

    /// Adds the headers to `response`; the name of the one that could not be rendered, if any.
    pub fn apply(&self, response: &mut HttpResponse) -> Result<(), &HeaderName> {
        let pairs = self.0.as_ref()?;
        let headers = response.headers_mut();
        for (name, value) in pairs.iter() {
            headers.insert(name.clone(), value.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_headers_are_added_in_order_with_their_values() {
        let headers = VerdictHeaders::render([(KEY_ID, "key_1"), (SCOPES, "a b")]);
        let mut response = HttpResponse::Ok().finish();
        headers.apply(&mut response).unwrap();
        assert_eq!(response.headers().get(KEY_ID).unwrap(), "key_1");
        assert_eq!(response.headers().get(SCOPES).unwrap(), "a b");
    }

    #[test]
    fn a_value_that_is_no_header_value_is_named_not_dropped() {
        let headers = VerdictHeaders::render([(KEY_ID, "key_1"), (OWNER_ID, "bad\nvalue")]);
        let mut response = HttpResponse::Ok().finish();
        assert_eq!(headers.apply(&mut response), Err(&OWNER_ID));
    }
}

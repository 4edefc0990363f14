//! Request bodies and query strings, read the way this API promises.
//!
//! Policy: a handler checks its caller's scope *before* the body is read, so it takes a
//! [`JsonBody`] (the unread body) and calls [`JsonBody::parse`] after the check. A body is read
//! in full within the configured deadline (408 otherwise) and size limit (413); it must be
//! uncompressed (415 for any `Content-Encoding` but `identity`: inflating before the limit
//! applies would let one small request cost gigabytes) and a JSON object, whatever the
//! `Content-Type` says (a missing, empty or non-JSON body is a 400, as upstream answers). The
//! object is read strictly: a member given twice, a member the operation does not take, or a
//! value of the wrong type is refused with a 400 naming the field, in our words, without
//! repeating what was sent (a secret pasted into the wrong field must not come back).

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Limits on reading a request body; registered as app data (defaults apply without it).
#[derive(Clone, Copy, Debug)]
pub struct BodyConfig {
    /// Largest accepted body, in bytes.
    pub limit: usize,
    /// Longest time the whole body may take to arrive, from when the handler starts reading.
    pub timeout: Duration,
}

impl Default for BodyConfig {
    fn default() -> Self {
        Self {
            limit: crate::config::DEFAULT_MAX_BODY_BYTES,
            timeout: Duration::from_secs(crate::config::DEFAULT_REQUEST_BODY_TIMEOUT_SECS),
        }
    }
}

/// The longest accepted query value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;

/// A JSON request body type: which fields it takes and what each accepts, for the errors.
pub trait RequestBody: DeserializeOwned {
    /// Every field, in documentation order.
    const FIELDS: &'static [&'static str];

    /// What `field` accepts, completing "`field` must be …".
    fn expects(field: &str) -> String;
}

/// The body of a request, not yet read.
pub struct JsonBody {
    req: HttpRequest,
    payload: Payload,
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self {
            req: req.clone(),
            payload: payload.take(),
        }))
    }
}

impl JsonBody {
    /// Reads and parses a body that must be present.
    pub async fn parse<T: RequestBody>(self) -> Result<T, ApiError> {
        let bytes = self.read().await?;
        if is_blank(&bytes) {
            return Err(ApiError::InvalidRequest {
                message: "The request body is empty: send a JSON object.".to_owned(),
                param: None,
                code: Some("invalid_json"),
            });
        }
        parse_object(&bytes)
    }

    /// Like [`JsonBody::parse`], but no body at all (or only whitespace, or a JSON `null`)
    /// means `T::default()`: for operations whose every field is optional.
    pub async fn parse_or_default<T: RequestBody + Default>(self) -> Result<T, ApiError> {
        let bytes = self.read().await?;
        if is_blank(&bytes) || bytes.trim_ascii() == b"null" {
            return Ok(T::default());
        }
        parse_object(&bytes)
    }

    /// Like [`JsonBody::parse`], but a body sent as `application/x-www-form-urlencoded` (as
    /// RFC 7662 introspection clients send it) is read as an object of string fields, with
    /// the same checks: each known field at most once, nothing unknown.
    pub async fn parse_form_or_json<T: RequestBody>(self) -> Result<T, ApiError> {
        let form = self
            .req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return self.parse().await;
        }
        let bytes = self.read().await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::invalid_request("The form body is not valid URL encoding."))?;
        let mut object = serde_json::Map::new();
        for (name, value) in pairs {
            let Some(field) = T::FIELDS.iter().find(|field| **field == name.as_str()) else {
                return Err(unknown_field::<T>(&name));
            };
            if object.insert(name, value.into()).is_some() {
                return Err(ApiError::invalid_param(
                    field,
                    format!("`{field}` is given more than once; send each field once."),
                ));
            }
        }
        let json = serde_json::to_vec(&object).map_err(|e| ApiError::Internal(Box::new(e)))?;
        parse_object(&json)
    }

    async fn read(mut self) -> Result<Bytes, ApiError> {
        let config = self
            .req
            .app_data::<web::Data<BodyConfig>>()
            .map_or_else(BodyConfig::default, |config| *config.get_ref());
        refuse_content_encoding(&self.req)?;
        let declared = self
            .req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > config.limit as u64) {
            return Err(ApiError::PayloadTooLarge {
                limit: config.limit,
            });
        }
        let limit = config.limit;
        let payload = &mut self.payload;
        let read = async move {
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::invalid_request("The request body could not be read to its end.")
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
        match tokio::time::timeout(config.timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::RequestTimeout),
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// 415 unless the body is sent as is: no `Content-Encoding`, or `identity`.
fn refuse_content_encoding(req: &HttpRequest) -> Result<(), ApiError> {
    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let identity = value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .all(|coding| coding.trim().eq_ignore_ascii_case("identity"))
        });
        if !identity {
            return Err(ApiError::UnsupportedEncoding);
        }
    }
    Ok(())
}

/// A JSON object of `T`'s fields, each at most once.
fn parse_object<T: RequestBody>(bytes: &[u8]) -> Result<T, ApiError> {
    let members = serde_json::from_slice::<Members>(bytes).map_err(|e| not_an_object(&e))?;
    let mut seen: Vec<&str> = Vec::with_capacity(members.0.len());
    for name in &members.0 {
        let Some(field) = T::FIELDS.iter().find(|field| **field == name.as_str()) else {
            return Err(unknown_field::<T>(name));
        };
        if seen.contains(field) {
            return Err(ApiError::invalid_param(
                field,
                format!("`{field}` is given more than once; send each field once."),
            ));
        }
        seen.push(field);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = path.split(['.', '[']).next().unwrap_or_default();
        match T::FIELDS.iter().find(|known| **known == field) {
            Some(field) => {
                ApiError::invalid_param(&path, format!("`{field}` must be {}.", T::expects(field)))
            }
            // Members were checked above; anything else is the body as a whole.
            None => not_an_object(e.inner()),
        }
    })
}

fn not_an_object(error: &serde_json::Error) -> ApiError {
    let message = match error.classify() {
        serde_json::error::Category::Data => "The request body must be a JSON object.".to_owned(),
        _ => format!(
            "The request body is not valid JSON (line {}, column {}).",
            error.line(),
            error.column()
        ),
    };
    ApiError::InvalidRequest {
        message,
        param: None,
        code: Some("invalid_json"),
    }
}

fn unknown_field<T: RequestBody>(name: &str) -> ApiError {
    let accepted: Vec<String> = T::FIELDS.iter().map(|f| format!("`{f}`")).collect();
    ApiError::InvalidRequest {
        message: format!(
            "The body has a field this operation does not take; it takes {}.",
            accepted.join(", ")
        ),
        // The name is the client's; it is only repeated when it cannot be a secret.
        param: is_plain_name(name).then(|| name.to_owned()),
        code: Some("unknown_parameter"),
    }
}

/// A short identifier of ASCII letters, digits and `_`: a field or parameter name that is
/// safe to repeat in an error (our secrets contain `-`).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The member names of a JSON object, in order, duplicates kept.
struct Members(Vec<String>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    names.push(name);
                }
                Ok(Members(names))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// For an optional field that may be left out but not sent as `null` (which would be
/// ambiguous: "no value" or "the default"?). Use with
/// `#[serde(default, deserialize_with = "extract::non_null")]`.
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For a field where `null` and absence mean different things: absent is `None`, `null` is
/// `Some(None)`. Use with `#[serde(default, deserialize_with = "extract::present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// For routes that take no query parameters: any parameter is refused (400), so a mistyped
/// or misplaced one is never silently ignored.
pub struct NoQuery;

impl FromRequest for NoQuery {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            QueryParams::parse(req.query_string())
                .and_then(QueryParams::finish)
                .map(|()| NoQuery),
        )
    }
}

/// A parsed query string, taken apart parameter by parameter. Empty values count as absent.
/// A route takes the parameters it knows and then calls [`QueryParams::finish`], which refuses
/// whatever is left: a mistyped or unsupported parameter is an error, never ignored. Errors
/// name a parameter only when the name is plain (see [`query_name`]) and never repeat a value.
#[derive(Debug)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Splits a raw query string; every value is at most [`MAX_VALUE_CHARS`] characters,
    /// without control characters.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
            ApiError::invalid_request("The query string is not valid URL encoding.")
        })?;
        for (name, value) in &pairs {
            if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
                let message = match query_name(name) {
                    Some(name) => format!(
                        "`{name}` must be at most {MAX_VALUE_CHARS} characters, without control characters."
                    ),
                    None => format!(
                        "Query values must be at most {MAX_VALUE_CHARS} characters, without control characters."
                    ),
                };
                return Err(ApiError::InvalidRequest {
                    message,
                    param: query_name(name).map(str::to_owned),
                    code: None,
                });
            }
        }
        Ok(Self { pairs })
    }

    /// The value of the single-valued parameter `name`; 400 if it is given twice (even once
    /// empty).
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.take_values(|n| n == name);
        if values.len() > 1 {
            return Err(ApiError::invalid_param(
                name,
                format!("`{name}` may be given only once."),
            ));
        }
        Ok(values.pop().filter(|value| !value.is_empty()))
    }

    /// Every non-empty value of the array parameter `name` (sent as `name[]`, or bare), at
    /// most `max`.
    pub fn take_all(&mut self, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
        let bare = name.strip_suffix("[]").unwrap_or(name);
        let mut values = self.take_values(|n| n == name || n == bare);
        values.retain(|value| !value.is_empty());
        if values.len() > max {
            return Err(ApiError::invalid_param(
                name,
                format!("`{name}` accepts at most {max} values."),
            ));
        }
        Ok(values)
    }

    /// Every value of the array parameter `name` (sent as `name[]`, or bare), empty ones
    /// included: for callers to whom an empty value is a mistake rather than an absence.
    pub fn take_each(&mut self, name: &str) -> Vec<String> {
        let bare = name.strip_suffix("[]").unwrap_or(name);
        self.take_values(|n| n == name || n == bare)
    }

    /// The integer parameter `name`.
    pub fn take_integer(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        self.take(name)?
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::invalid_param(name, format!("`{name}` must be an integer."))
                })
            })
            .transpose()
    }

    /// 400 naming the first parameter given (even empty) whose name, without `[]`, is one
    /// of `names`: filters this service cannot honour.
    pub fn refuse(&self, names: &[&str]) -> Result<(), ApiError> {
        let given = self.pairs.iter().map(|(name, _)| name);
        match given
            .into_iter()
            .find(|name| names.contains(&name.trim_end_matches("[]")))
        {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid_param(
                name,
                format!("`{name}` is not supported by this service."),
            )),
        }
    }

    /// 400 if any parameter was not taken: this route does not know it.
    pub fn finish(self) -> Result<(), ApiError> {
        let Some((name, _)) = self.pairs.first() else {
            return Ok(());
        };
        Err(ApiError::InvalidRequest {
            message: match query_name(name) {
                Some(name) => format!(
                    "`{name}` is not a query parameter of this operation; see /openapi.json for the ones it takes."
                ),
                None => "The query string has a parameter this operation does not take; see /openapi.json for the ones it takes.".to_owned(),
            },
            param: query_name(name).map(str::to_owned),
            code: Some("unknown_parameter"),
        })
    }

    /// Whether a parameter's name starts with `prefix` (a cheap test before taking several).
    pub fn has_name_starting_with(&self, prefix: &str) -> bool {
        self.pairs.iter().any(|(name, _)| name.starts_with(prefix))
    }

    fn take_values(&mut self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        // Most lookups find nothing: leave the pairs as they are then (no new vectors).
        if !self.pairs.iter().any(|(name, _)| matches(name)) {
            return Vec::new();
        }
        let (taken, kept) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(name, _)| matches(name));
        self.pairs = kept;
        taken.into_iter().map(|(_, value)| value).collect()
    }
}

/// `name` if it is safe to repeat in an error: a plain name (letters, digits, `_`), optionally
/// followed by one bracketed plain suffix (`event_types[]`, `effective_at[gt]`). Anything else
/// might be a secret pasted in the wrong place.
pub fn query_name(name: &str) -> Option<&str> {
    let (base, suffix) = match name.split_once('[') {
        None => (name, None),
        Some((base, rest)) => (base, Some(rest.strip_suffix(']')?)),
    };
    let plain = is_plain_name(base) && suffix.is_none_or(|s| s.is_empty() || is_plain_name(s));
    plain.then_some(name)
}

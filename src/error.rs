//! The one error type of the HTTP API and its wire form.
//!
//! Policy: every error a client can cause is a 4xx carrying OpenAI's envelope
//! `{"error":{"message","type","param","code"}}` with a message that says what to fix.
//! Failures the client cannot fix are 503 (the database is unreachable or the pool is
//! exhausted) or an opaque 500; their cause chain goes to the log, never to the client.
//! Extractor failures (JSON, query string), unknown routes and wrong methods go through this
//! type too, so every response of the service has the same shape.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a parameter is out of range (400).
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// No usable credentials (401).
    #[error("{message}")]
    Unauthorized { message: String, code: &'static str },
    /// The key lacks a scope the operation needs, or tried to grant one it lacks (403).
    #[error("{message}")]
    Forbidden { message: String, code: String },
    /// The change would break an invariant of the organisation (409).
    #[error("{message}")]
    Conflict { message: String, code: &'static str },
    /// The addressed object does not exist (404).
    #[error("{message}")]
    NotFound {
        message: String,
        param: Option<&'static str>,
    },
    /// No route has this path (404). Neither the path nor the method is repeated: a client
    /// may have pasted a secret into either.
    #[error("No route matches this method and path; the API is described at /openapi.json.")]
    UnknownRoute,
    /// The path exists but not with this method (405).
    #[error("This path does not accept this method; the API is described at /openapi.json.")]
    MethodNotAllowed,
    /// The body did not arrive within the deadline (408); the connection is closed.
    #[error("The request body did not arrive in time.")]
    RequestTimeout,
    /// The body is larger than the configured limit (413).
    #[error("The request body is larger than the limit of {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    /// The body is compressed (415): bodies are accepted only as sent, without decoding.
    #[error(
        "Request bodies must not be compressed: send the body without a `Content-Encoding` \
         (or with `identity`)."
    )]
    UnsupportedEncoding,
    /// This client presented too many unknown keys lately (429); it may look one up again
    /// after `retry_after_secs`.
    #[error(
        "Too many unknown API keys were presented from your address; retry after \
         {retry_after_secs} seconds. Keys this service already knows keep working."
    )]
    RateLimited { retry_after_secs: u64 },
    /// A project key's project has spent its request budget for the model (429): OpenAI's
    /// `x-ratelimit-*-requests` headers and `Retry-After` say which budget and for how long.
    #[error(
        "This project has reached its request limit for this model ({} per {}); retry after \
         {retry_after_secs} seconds.", quota.limit, if *per_day { "day" } else { "minute" }
    )]
    ModelRateLimited {
        quota: crate::model_limits::Quota,
        per_day: bool,
        retry_after_secs: u64,
    },
    /// The database cannot be reached or the pool has no free connection (503).
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else (500); the client sees an opaque message.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// OpenAI's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// The details of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A human-readable explanation of what went wrong and how to fix it.
    pub message: String,
    /// The error class: `invalid_request_error` for problems with the request, `requests` for
    /// a rate limit (as upstream types a limit on requests), `server_error` for problems on
    /// our side.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request parameter the error is about, if any.
    #[schema(required = true)]
    pub param: Option<String>,
    /// A stable machine-readable code, if any (e.g. `invalid_api_key`).
    #[schema(required = true)]
    pub code: Option<String>,
}

impl ApiError {
    /// A 400 about one parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.to_owned()),
            code: None,
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// A 401 with a machine-readable code.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            message: message.into(),
            code,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) | Self::Internal(_) => "server_error",
            Self::RateLimited { .. } | Self::ModelRateLimited { .. } => "requests",
            _ => "invalid_request_error",
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            Self::InvalidRequest { param, .. } => param.clone(),
            Self::NotFound { param, .. } => param.map(str::to_owned),
            _ => None,
        }
    }

    /// The machine-readable `code` of the envelope: one of ours, never client input, so the
    /// access log may show it.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { code, .. } => *code,
            Self::Unauthorized { code, .. } | Self::Conflict { code, .. } => Some(code),
            Self::Forbidden { code, .. } => Some(code),
            Self::NotFound { .. } | Self::UnknownRoute => Some("not_found"),
            Self::MethodNotAllowed => Some("method_not_allowed"),
            Self::RequestTimeout => Some("request_timeout"),
            Self::PayloadTooLarge { .. } => Some("payload_too_large"),
            Self::UnsupportedEncoding => Some("unsupported_content_encoding"),
            Self::RateLimited { .. } | Self::ModelRateLimited { .. } => Some("rate_limit_exceeded"),
            Self::Unavailable(_) => Some("service_unavailable"),
            Self::Internal(_) => None,
        }
    }

    /// The message the client sees; server-side causes stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => {
                "The service cannot reach its database right now; retry shortly.".to_owned()
            }
            Self::Internal(_) => {
                "The server had an error while processing your request.".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The envelope this error is sent as.
    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorBody {
                message: self.public_message(),
                kind: self.kind(),
                param: self.param(),
                code: self.code().map(str::to_owned),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::NotFound { .. } | Self::UnknownRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } | Self::ModelRateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), cause = %error_chain(self), "request failed");
        }
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if let Self::RateLimited { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        if let Self::ModelRateLimited {
            quota,
            retry_after_secs,
            ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
            for (name, value) in crate::model_limits::quota_headers(quota) {
                response.insert_header((name, value));
            }
        }
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            response.insert_header((
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            ));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body may still arrive; it cannot be told from a next request.
            response.force_close();
        }
        response.json(self.body())
    }
}

/// `error: cause: cause ...`, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    // libpq ends its messages with a newline; keep the chain on one line.
    let mut out = error.to_string().trim_end().to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {}", cause.to_string().trim_end().replace('\n', " "));
        source = cause.source();
    }
    out
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound {
                message: "The requested object does not exist.".to_owned(),
                param: None,
            },
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Self::Unavailable(Box::new(error)),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Internal(Box::new(error))
    }
}

/// Turns query-string failures into the envelope (wired through `QueryConfig`).
pub fn query_error_handler(
    _error: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::invalid_request("The query string is not valid.").into()
}

/// Turns path-parameter failures into the envelope (wired through `PathConfig`).
pub fn path_error_handler(
    _error: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::invalid_request("The URL path is not valid.").into()
}

/// The error responses every authenticated operation shares, declared once in the OpenAPI
/// document (`components/responses`) and referred to by each operation.
pub mod responses {
    use utoipa::{IntoResponses, ToResponse};

    use super::ErrorResponse;

    /// The five responses every authenticated operation can give besides its own, as
    /// references to the shared ones below: list it in `responses(...)` after the
    /// operation's own.
    #[derive(IntoResponses)]
    #[allow(dead_code)]
    pub enum SharedErrors {
        #[response(status = 401)]
        Unauthorized(#[ref_response] Unauthorized),
        #[response(status = 403)]
        Forbidden(#[ref_response] Forbidden),
        #[response(status = 429)]
        RateLimited(#[ref_response] RateLimited),
        #[response(status = 500)]
        ServerError(#[ref_response] ServerError),
        #[response(status = 503)]
        Unavailable(#[ref_response] Unavailable),
    }

    /// The errors of reading a JSON request body, as references to the shared responses
    /// below: listed by every operation that takes a body.
    #[derive(IntoResponses)]
    #[allow(dead_code)]
    pub enum BodyErrors {
        #[response(status = 400)]
        InvalidBody(#[ref_response] InvalidBody),
        #[response(status = 408)]
        BodyTimeout(#[ref_response] BodyTimeout),
        #[response(status = 413)]
        BodyTooLarge(#[ref_response] BodyTooLarge),
        #[response(status = 415)]
        CompressedBody(#[ref_response] CompressedBody),
    }

    /// The request is invalid: the body is missing, empty, not JSON, not an object, repeats a
    /// field, has a field the operation does not take or a value of the wrong type or range,
    /// or the query string has a parameter the operation does not take. `param` names the
    /// field when there is one.
    #[derive(ToResponse)]
    pub struct InvalidBody(#[allow(dead_code)] ErrorResponse);

    /// The body did not arrive within the server's deadline; the connection is closed.
    #[derive(ToResponse)]
    pub struct BodyTimeout(#[allow(dead_code)] ErrorResponse);

    /// The body is larger than the server's limit.
    #[derive(ToResponse)]
    pub struct BodyTooLarge(#[allow(dead_code)] ErrorResponse);

    /// The body is compressed (`Content-Encoding` other than `identity`); send it as is.
    #[derive(ToResponse)]
    pub struct CompressedBody(#[allow(dead_code)] ErrorResponse);

    /// The bearer key is missing, malformed, unknown, deleted, disabled or expired (`code`
    /// says which).
    #[derive(ToResponse)]
    pub struct Unauthorized(#[allow(dead_code)] ErrorResponse);

    /// The bearer key lacks a scope the operation needs, or tried to grant one it lacks
    /// (`code` is `missing_scope.<scope>`).
    #[derive(ToResponse)]
    pub struct Forbidden(#[allow(dead_code)] ErrorResponse);

    /// Too many unknown keys were presented from this client address lately, so this key was
    /// not looked up (`type` `requests`, `code` `rate_limit_exceeded`); retry after
    /// `Retry-After` seconds. Only while this replica cannot vouch that a key does not exist
    /// (its PostgreSQL listener is down or reconnecting); keys the service has recently seen
    /// are never refused this way.
    #[derive(ToResponse)]
    #[response(headers(
        ("Retry-After" = u64, description = "Seconds until this client may present an unknown key again (at least 1).")
    ))]
    pub struct RateLimited(#[allow(dead_code)] ErrorResponse);

    /// Unexpected server failure; the cause is in the server log, not in the response.
    #[derive(ToResponse)]
    pub struct ServerError(#[allow(dead_code)] ErrorResponse);

    /// The database is unreachable or has no free connection; retry after `Retry-After`.
    #[derive(ToResponse)]
    pub struct Unavailable(#[allow(dead_code)] ErrorResponse);
}

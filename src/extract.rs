//! A JSON body extractor that names the offending field.
//!
//! actix's `web::Json` reports a type error as one line of serde text. This one first parses
//! the body as JSON (size limit and content type come from the app's `JsonConfig`, so they
//! answer 413 and 415 through the same handler), then deserialises it with
//! `serde_path_to_error`, so a 400 carries `param` set to the field that was wrong.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move { deserialize(value.await?.into_inner()).map(Json) })
    }
}

fn deserialize<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, actix_web::Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::InvalidRequest {
            message: format!("Invalid request body: {}", e.inner()),
            param: (path != ".").then_some(path),
            code: None,
        }
        .into()
    })
}

/// Like [`Json`], but no body (length 0, whatever the content type) or a JSON `null` means
/// `T::default()`; for operations whose every field is optional.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers.get(header::CONTENT_LENGTH);
        // In HTTP/1.1 a request with neither header has no body.
        let no_body = length.is_some_and(|length| length.as_bytes() == b"0")
            || (length.is_none() && !headers.contains_key(header::TRANSFER_ENCODING));
        if no_body {
            return Box::pin(async { Ok(OptionalJson(T::default())) });
        }
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            match value.await?.into_inner() {
                serde_json::Value::Null => Ok(OptionalJson(T::default())),
                value => deserialize(value).map(OptionalJson),
            }
        })
    }
}

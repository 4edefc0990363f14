//! The admin console: `GET /console` is a web app for people who hold an admin key, on the same
//! public API as every other client (`/v1/...` with the key as bearer token); it has no
//! endpoint of its own.
//!
//! The app is plain HTML, CSS and JavaScript modules written for this service, in `console/`,
//! embedded in the binary with `include_bytes!`: no framework and no build step, so `cargo build`
//! needs no Node.js and the files served are the files in the repository. The key a person
//! signs in with lives in the tab's `sessionStorage` only; the page never puts it in a URL.
//!
//! Every answer carries a policy that keeps the page on this origin with no inline script or
//! style, refuses framing, and sends no referrer. The files are revalidated on every load
//! (`no-cache` with an `ETag`), so a new binary's console is never mixed with an old one's
//! cached modules. A path that is not one of the files answers 404 in the error envelope, like
//! every unknown route. The console is not part of the API, so it is not in the OpenAPI
//! document (as `/docs`).

use std::hash::Hasher;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::get_or_head;
use crate::error::ApiError;

/// What the console may load and where it may send: its own origin only; no inline script or
/// style, no plugin, no framing, no form posted anywhere (the forms are handled by script).
/// `img-src data:` is for the empty icon the page declares so the browser asks for none.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page, served at `/console`.
const PAGE: &[u8] = include_bytes!("console/index.html");

/// The files the page loads, by name under `/console/`, with their content type.
pub const ASSETS: [(&str, &str, &[u8]); 8] = [
    ("console.css", CSS, include_bytes!("console/console.css")),
    ("app.js", JS, include_bytes!("console/app.js")),
    ("api.js", JS, include_bytes!("console/api.js")),
    ("ui.js", JS, include_bytes!("console/ui.js")),
    ("keys.js", JS, include_bytes!("console/keys.js")),
    ("users.js", JS, include_bytes!("console/users.js")),
    ("projects.js", JS, include_bytes!("console/projects.js")),
    ("audit.js", JS, include_bytes!("console/audit.js")),
];

/// The bytes the console embeds: the page and every file it loads.
pub fn bundle_size() -> usize {
    PAGE.len() + ASSETS.iter().map(|(_, _, body)| body.len()).sum::<usize>()
}

/// Registers `/console`, `/console/` (sent to `/console`) and `/console/{file}`, GET and HEAD.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_or_head("/console", page))
        // The page's links are relative to `/console`; from `/console/` they would miss.
        .service(get_or_head("/console/", || async {
            HttpResponse::TemporaryRedirect()
                .insert_header((header::LOCATION, HeaderValue::from_static("../console")))
                .finish()
        }))
        .service(get_or_head("/console/{file}", asset));
}

/// `GET /console`: the app's page.
async fn page(request: HttpRequest) -> HttpResponse {
    serve(&request, HTML, PAGE)
}

/// `GET /console/{file}`: one of the files the page loads.
async fn asset(request: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(ApiError::UnknownRoute)?;
    Ok(serve(&request, content_type, body))
}

/// `body` with the console's headers, or 304 when the browser holds these very bytes.
fn serve(request: &HttpRequest, content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    let etag = etag(body);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ETAG, etag))
        // Revalidated on every load: the files change only with the binary, and a page from
        // one binary must not run modules cached from another.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ));
    if fresh {
        response.finish()
    } else {
        response.body(body)
    }
}

/// A strong validator for `body`: FNV-1a of its bytes (the files are fixed at build time, so
/// this only tells two builds apart).
fn etag(body: &[u8]) -> String {
    let mut hasher = Fnv1a::default();
    hasher.write(body);
    format!("\"{:016x}\"", hasher.finish())
}

struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served_and_every_served_file_is_named() {
        let page = std::str::from_utf8(PAGE).unwrap();
        let mut named: Vec<&str> = page
            .split('"')
            .filter_map(|part| part.strip_prefix("console/"))
            .collect();
        // The modules the entry module imports, as `./name.js`.
        for (_, _, body) in ASSETS {
            let text = std::str::from_utf8(body).unwrap();
            named.extend(text.split('"').filter_map(|part| part.strip_prefix("./")));
        }
        for (name, _, _) in ASSETS {
            assert!(
                named.contains(&name),
                "{name} is served but nothing loads it"
            );
        }
        for name in named {
            assert!(
                ASSETS.iter().any(|(served, _, _)| *served == name),
                "{name} is loaded but not served"
            );
        }
    }

    #[test]
    fn the_etag_tells_different_bytes_apart() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_eq!(etag(b"").len(), 18);
    }
}

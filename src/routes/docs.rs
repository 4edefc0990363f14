//! The API reference in the browser: `GET /docs` is Swagger UI on `/openapi.json`, and `GET /`
//! sends a browser there.
//!
//! Swagger UI's files come from the `utoipa-swagger-ui` crate with its `vendored` feature: the
//! Swagger UI release is a zip inside a crates.io package (`utoipa-swagger-ui-vendored`), unpacked
//! by the build script and embedded in the binary (`rust-embed`, also in debug builds through
//! `debug-embed`). Nothing is downloaded at build time and the page loads nothing from another
//! origin, so it works on a machine without internet access. The page itself (HTML, the script
//! that starts Swagger UI, a little CSS) is ours, in `docs/`: no inline script, so the
//! Content-Security-Policy can allow `'self'` only. Only the files the page uses are served;
//! any other path answers 404 in the error envelope like every unknown route.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::Config;

use super::get_or_head;
use crate::error::ApiError;

/// What the page may load: its own origin only, no inline script or style (Swagger UI sets
/// styles through the DOM, which the policy allows). `img-src data:` is for the icons Swagger
/// UI's stylesheet inlines. tests/browser/docs.mjs fails on any violation.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("docs/index.html");
const INIT_JS: &str = include_str!("docs/init.js");
const PAGE_CSS: &str = include_str!("docs/page.css");

/// The Swagger UI files the page uses, from the embedded release.
const SWAGGER_UI_FILES: [&str; 4] = [
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
];

/// Registers `/`, `/docs`, `/docs/` and `/docs/{file}` (GET and HEAD; other methods answer 405).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get_or_head("/", root))
        .service(get_or_head("/docs", page))
        // The page's links are relative to `/docs`; from `/docs/` they would point elsewhere.
        .service(get_or_head("/docs/", || async { redirect("../docs") }))
        .service(get_or_head("/docs/{file}", asset));
}

/// `GET /`: a temporary redirect to the reference. Temporary (307), so a browser does not
/// remember it and the root stays free for something else later; 307 rather than 302 so the
/// method is kept as it is (a HEAD stays a HEAD). The target is relative, so it also holds
/// behind a proxy that adds a path prefix.
async fn root() -> HttpResponse {
    redirect("docs")
}

fn redirect(location: &'static str) -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, HeaderValue::from_static(location)))
        .finish()
}

/// `GET /docs`: the page, with a policy that keeps it on this origin.
async fn page() -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.content_type("text/html; charset=utf-8");
    with_page_headers(&mut response);
    response.body(PAGE)
}

/// `GET /docs/{file}`: one of the page's assets.
async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    let (content_type, body): (&str, actix_web::body::BoxBody) = match file.as_str() {
        "init.js" => ("text/javascript; charset=utf-8", boxed(INIT_JS.as_bytes())),
        "page.css" => ("text/css; charset=utf-8", boxed(PAGE_CSS.as_bytes())),
        name if SWAGGER_UI_FILES.contains(&name) => {
            let embedded = swagger_ui_file(name).ok_or(ApiError::UnknownRoute)?;
            let content_type = match name.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                _ => "image/png",
            };
            let bytes = match embedded {
                Cow::Borrowed(bytes) => Bytes::from_static(bytes),
                Cow::Owned(bytes) => Bytes::from(bytes),
            };
            (content_type, actix_web::body::BoxBody::new(bytes))
        }
        _ => return Err(ApiError::UnknownRoute),
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        // Not `no-store` as the API's answers: they change only with the binary.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"));
    with_page_headers(&mut response);
    Ok(response.body(body))
}

fn boxed(bytes: &'static [u8]) -> actix_web::body::BoxBody {
    actix_web::body::BoxBody::new(bytes)
}

/// The bytes of one file of the embedded Swagger UI release.
fn swagger_ui_file(name: &str) -> Option<Cow<'static, [u8]>> {
    // `serve` only rewrites `swagger-initializer.js`, which the page does not use; the
    // configuration it takes is therefore never read.
    static CONFIG: LazyLock<Arc<Config<'static>>> =
        LazyLock::new(|| Arc::new(Config::new(["openapi.json"])));
    utoipa_swagger_ui::serve(name, CONFIG.clone())
        .ok()
        .flatten()
        .map(|file| file.bytes)
}

fn with_page_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
}

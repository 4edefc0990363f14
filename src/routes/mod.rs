//! HTTP only: extract, validate into domain types, one service or query call, map to the wire
//! type. One module per resource; `list` holds what every list route shares.

pub mod admin_api_keys;
pub mod audit_logs;
pub mod console;
pub mod docs;
pub mod forward_auth;
pub mod health;
pub mod introspect;
pub mod invites;
pub mod list;
pub mod mcp;
pub mod metrics;
pub mod project_api_keys;
pub mod projects;
pub mod service_accounts;
pub mod users;

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Route, guard, web};

use crate::error::ApiError;

/// Registers the versionless routes of the API on `cfg`; called once under `/v1` and once at the
/// root, so clients built for either base URL work.
pub fn api(cfg: &mut web::ServiceConfig) {
    // Before the authenticated scope, which would match it: its credential is the invite token.
    cfg.service(invites::accept_resource());
    cfg.service(
        web::scope("/organization")
            .wrap(from_fn(crate::auth::require_admin_key))
            .configure(admin_api_keys::routes)
            .configure(audit_logs::routes)
            .configure(users::routes)
            .configure(invites::routes)
            .configure(projects::routes)
            .configure(service_accounts::routes)
            .configure(project_api_keys::routes)
            .configure(mcp::routes),
    );
}

/// Registers the verification routes (forward auth and introspection), under `/v1` and at the
/// root. Every request of every service behind the proxy comes through them, so they are
/// registered ahead of the API's scopes (the router tries patterns in order): a check is
/// matched after a handful of patterns instead of after every route of the API.
pub fn verification(cfg: &mut web::ServiceConfig) {
    for prefix in ["/v1", ""] {
        forward_auth::routes(cfg, prefix);
        introspect::routes(cfg, prefix);
    }
}

/// The default route of a resource: a method it does not take is answered 405 in the error
/// envelope, with `Allow` listing the methods it does (`allow`, e.g. `"GET, POST"`), as
/// RFC 9110 section 15.5.6 requires.
pub fn method_not_allowed(allow: &'static str) -> Route {
    web::to(move || async move {
        let mut response = HttpResponse::from_error(ApiError::MethodNotAllowed);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    })
}

/// The answer for a path no route matches.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::UnknownRoute)
}

/// A resource at `path` answering GET and HEAD with `handler`; any other method gets 405 with
/// `Allow: GET, HEAD`. For the pages a browser loads (`/docs`, `/console`) and their files.
pub fn get_or_head<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .name(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .default_service(method_not_allowed("GET, HEAD"))
}

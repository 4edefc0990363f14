//! Liveness and readiness probes: unauthenticated, JSON, outside the versioned API. Both
//! answer `HEAD` as they answer `GET`, without the body.
//!
//! Readiness: ready when the database answers a query on a pooled connection and the writer
//! is making progress (no write has waited longer than `WRITER_STALL_SECS` without any write
//! finishing); otherwise 503 in the error envelope, with `Retry-After`. A writer that is busy
//! but finishing writes stays ready; the cause of a failure goes to the log, not the client.

use actix_web::{HttpResponse, Route, guard, web};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::db::run_blocking;
use crate::error::ApiError;
use crate::state::AppState;

/// The body of a probe's 200.
#[derive(utoipa::ToSchema)]
pub struct ProbeStatus {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[allow(dead_code)]
    status: String,
}

/// A route for `GET` and `HEAD` (actix-web sends the headers of a `HEAD` response, and its
/// `Content-Length`, without the body).
pub fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// `GET /healthz`: the process is up. Touches nothing else.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "Probes",
    responses((status = 200, description = "The process is up (`{\"status\":\"ok\"}`).", body = ProbeStatus))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the writer is making progress and the database answers a query; 503 in
/// the error envelope when either is not so.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "Probes",
    responses(
        (status = 200, description = "Ready to serve (`{\"status\":\"ready\"}`).", body = ProbeStatus),
        (status = 503, response = crate::error::responses::Unavailable),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .writer
        .stalled()
        .map_err(|stalled| ApiError::Unavailable(Box::new(stalled)))?;
    run_blocking(&state.pool, |conn| {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    })
    .await
    .map_err(|e| match e {
        ApiError::Internal(cause) => ApiError::Unavailable(cause),
        other => other,
    })?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

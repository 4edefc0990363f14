//! Liveness and readiness probes: unauthenticated, JSON, outside the versioned API.

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::db::run_blocking;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is up. Touches nothing else.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "Probes",
    responses((status = 200, description = "The process is up (`{\"status\":\"ok\"}`).", body = crate::openapi::ProbeStatus))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers a query; 503 in the error envelope when it does not.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "Probes",
    responses(
        (status = 200, description = "Ready to serve (`{\"status\":\"ready\"}`).", body = crate::openapi::ProbeStatus),
        (status = 503, response = crate::error::responses::Unavailable),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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

//! `GET /organization/admin_api_keys`: one page of keys, with search and status filters.

use actix_web::{HttpRequest, HttpResponse, web};

use super::json::{AdminApiKey, ListQuery};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::Scope;
use crate::error::responses::{Forbidden, ServerError, Unauthorized, Unavailable};
use crate::error::{ApiError, ErrorResponse};
use crate::ids;
use crate::models::admin_api_key::{self, KeyStatus, ListFilter, Order};
use crate::routes::list::{List, Pagination, QueryParams};
use crate::state::AppState;

/// List admin API keys
///
/// Returns one page of the organisation's admin keys in creation order, oldest first unless
/// `order=desc`. Page with `after` set to the previous page's `last_id`; keys made in the same
/// second keep a stable order, so paging never skips or repeats a key.
#[utoipa::path(
    get,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-list",
    tag = "Admin API keys",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of keys.", body = List<AdminApiKey>),
        (status = 400, description = "`limit`, `order`, `after`, `search` or `status` is invalid; `param` names it.", body = ErrorResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let (page, filter) = parse_query(req.query_string(), state.clock.now())?;
    let limit = page.limit;
    let rows = run_blocking(&state.pool, move |conn| {
        let cursor = match &page.after {
            None => None,
            Some(id) => Some(admin_api_key::cursor_of(conn, id)?.ok_or_else(|| no_page_after(id))?),
        };
        Ok(admin_api_key::list_page(
            conn,
            cursor.as_ref(),
            page.order,
            limit + 1,
            &filter,
        )?)
    })
    .await?;
    for (row, _) in &rows {
        state.cache.note_stored_use(&row.id, row.last_used_at);
    }
    let has_more = rows.len() as i64 > limit;
    let data = rows.into_iter().take(limit as usize);
    let data = data
        .map(|key| AdminApiKey::shown(key, &state.usage))
        .collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |key: &AdminApiKey| &key.id)))
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        format!("No admin API key with id {id:?} exists, so there is no page after it."),
    )
}

fn parse_query(query: &str, now: i64) -> Result<(Pagination, ListFilter), ApiError> {
    let mut query = QueryParams::parse(query)?;
    let page = Pagination::take(&mut query, Order::Asc, true)?;
    if let Some(id) = &page.after
        && !ids::plausible(id)
    {
        return Err(no_page_after(id));
    }
    let status = match query.take("status")?.as_deref() {
        None => None,
        Some("active") => Some(KeyStatus::Active),
        Some("expired") => Some(KeyStatus::Expired),
        Some("disabled") => Some(KeyStatus::Disabled),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "status",
                "`status` must be `active`, `expired` or `disabled`.",
            ));
        }
    };
    let search = query.take("search")?;
    Ok((
        page,
        ListFilter {
            search,
            status,
            now,
        },
    ))
}

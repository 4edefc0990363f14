//! `GET /organization/admin_api_keys`: one page of keys, with search and status filters.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};

use super::json::{AdminApiKey, ListQuery, render_stored, view_body};
use crate::auth::AdminKey;
use crate::cache::{Cache, CachedView};
use crate::db::DbConnection;
use crate::db::run_blocking;
use crate::domain::{Scope, permissions};
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::QueryParams;
use crate::ids;
use crate::models::admin_api_key::{self, KeyStatus, ListFilter, Order};
use crate::routes::list::{List, ListObject, Pagination, take_owner_id, take_page_number};
use crate::state::AppState;

/// List admin API keys
///
/// Returns one page of the organisation's admin keys in creation order, oldest first unless
/// `order=desc`. Page with `after` set to the previous page's `last_id`; keys made in the same
/// second keep a stable order, so paging never skips or repeats a key. Or ask for a numbered
/// page with `page` (an extension, from seed 002; not with `after`): the answer then also
/// carries `page` and `total`, the number of matching keys. A numbered page costs more the
/// deeper it is (the database skips every key before it), so it may start at most 10,000
/// keys in; `after` costs the same at any depth.
#[utoipa::path(
    get,
    path = "/organization/admin_api_keys",
    operation_id = "admin-api-keys-list",
    tag = "Admin API keys",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of keys.", body = List<AdminApiKey>),
        (status = 400, description = "`limit`, `order`, `after`, `page`, `search`, `status`, `owner_id` or `permission` is invalid, or `page` and `after` were both sent; `param` names it.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let (page, number, filter) = parse_query(req.query_string(), state.clock.now())?;
    let cache = state.cache.clone();
    let (views, has_more, total) = run_blocking(&state.pool, move |conn| {
        read_page(conn, &cache, &page, number, &filter)
    })
    .await?;
    let id = |view: Option<&Arc<CachedView>>| view.map(|view| view.key.0.id.clone());
    let page = List {
        object: ListObject::List,
        first_id: id(views.first()),
        last_id: id(views.last()),
        has_more,
        data: views
            .iter()
            .map(|view| view_body(view, &state.usage, state.cache.mcp_presets()))
            .collect::<Result<_, _>>()?,
        page: number,
        total,
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(page.to_json()))
}

/// A page's views, whether more follow, and (for a numbered page) how many keys match.
type Page = (Vec<Arc<CachedView>>, bool, Option<i64>);

/// One page, and with a page `number` the count of every match. The database gives the keys
/// of the page with every column a change can move; when the view cache holds each of them
/// exactly so, the bodies come from it. Otherwise the page is read again whole (one
/// statement, so one snapshot) and its keys are cached.
fn read_page(
    conn: &mut DbConnection,
    cache: &Cache,
    page: &Pagination,
    number: Option<i64>,
    filter: &ListFilter,
) -> Result<Page, ApiError> {
    let ticket = cache.view_ticket();
    let cursor = match &page.after {
        None => None,
        Some(id) => Some(admin_api_key::cursor_of(conn, id)?.ok_or_else(|| no_page_after(id))?),
    };
    let (cursor, limit) = (cursor.as_ref(), page.limit as usize);
    let offset = number.map(|number| (number - 1) * page.limit);
    let rows = match offset {
        None => admin_api_key::list_page(conn, cursor, page.order, page.limit + 1, filter)?,
        Some(offset) => {
            admin_api_key::numbered_page(conn, page.order, offset, page.limit + 1, filter)?
        }
    };
    let total = match number {
        None => None,
        Some(_) => Some(admin_api_key::count_matching(conn, filter)?),
    };
    let has_more = rows.len() > limit;
    let cached: Option<Vec<_>> = rows
        .iter()
        .take(limit)
        .map(|row| cache.listed_view(row, filter.now))
        .collect();
    if let Some(views) = cached {
        return Ok((views, has_more, total));
    }
    let mut keys = match offset {
        None => admin_api_key::list_page_keys(conn, cursor, page.order, page.limit + 1, filter)?,
        Some(offset) => {
            admin_api_key::numbered_page_keys(conn, page.order, offset, page.limit + 1, filter)?
        }
    };
    let has_more = keys.len() > limit;
    keys.truncate(limit);
    let rendered = keys
        .into_iter()
        .map(|key| render_stored(key, cache.mcp_presets()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        cache.fill_views(&ticket, rendered, filter.now),
        has_more,
        total,
    ))
}

fn no_page_after(id: &str) -> ApiError {
    ApiError::invalid_param(
        "after",
        match ids::ours(id) {
            Some(id) => format!("No admin API key with id `{id}` exists, so there is no page after it."),
            None => "`after` must be the id of an existing admin API key (`key_` and 24 letters or digits).".to_owned(),
        },
    )
}

fn parse_query(query: &str, now: i64) -> Result<(Pagination, Option<i64>, ListFilter), ApiError> {
    let mut query = QueryParams::parse(query)?;
    let page = Pagination::take(&mut query, Order::Asc, true)?;
    let number = take_page_number(&mut query, &page)?;
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
    let owner_id = take_owner_id(&mut query)?;
    let permission = query.take("permission")?;
    if permission
        .as_deref()
        .is_some_and(|p| !permissions::is_valid(p))
    {
        return Err(ApiError::invalid_param(
            "permission",
            "`permission` must be a permission: 1 to 128 characters of letters, digits and \
             `_ . : / -`, optionally ending in `*`.",
        ));
    }
    query.finish()?;
    Ok((
        page,
        number,
        ListFilter {
            search,
            status,
            owner_id,
            permission,
            now,
        },
    ))
}

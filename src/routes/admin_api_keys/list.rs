//! `GET /organization/admin_api_keys`: one page of keys, with search and status filters.

use actix_web::{HttpResponse, web};

use super::json::{AdminApiKey, ApiKeyList, ListObject, ListOrder, ListQuery};

use super::plausible_key_id;
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::error::{ApiError, ErrorResponse};
use crate::models::admin_api_key::{self, KeyStatus, ListFilter, Order};
use crate::scopes::Scope;
use crate::startup::AppState;

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

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
        (status = 200, description = "One page of keys.", body = ApiKeyList),
        (status = 400, description = "`limit`, `order`, `after`, `search` or `status` is invalid; `param` names it.", body = ErrorResponse),
        (status = 401, description = "The bearer key is missing, invalid, disabled, deleted or expired.", body = ErrorResponse),
        (status = 403, description = "The bearer key lacks the scope this operation needs (`code` names it).", body = ErrorResponse),
        (status = 500, description = "Unexpected server failure; the cause is in the server log.", body = ErrorResponse),
        (status = 503, description = "The database is unavailable.", body = ErrorResponse),
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list(
    caller: AdminKey,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AdminApiKeysRead)?;
    let ListParams {
        after,
        order,
        limit,
        mut filter,
    } = validate_list_query(query.into_inner())?;
    filter.now = state.clock.now();
    let rows = run_blocking(&state.pool, move |conn| {
        let cursor = match &after {
            None => None,
            Some(id) => Some(admin_api_key::cursor_of(conn, id)?.ok_or_else(|| {
                ApiError::invalid_param(
                    "after",
                    format!(
                        "No admin API key with id {id:?} exists, so there is no page after it."
                    ),
                )
            })?),
        };
        Ok(admin_api_key::list_page(
            conn,
            cursor.as_ref(),
            order,
            limit + 1,
            &filter,
        )?)
    })
    .await?;
    for (row, _) in &rows {
        state.auth_cache.note_stored_use(&row.id, row.last_used_at);
    }
    let has_more = rows.len() as i64 > limit;
    let data: Vec<AdminApiKey> = rows
        .into_iter()
        .take(limit as usize)
        .map(|(row, owner)| AdminApiKey::from_row(row, owner, &state.usage))
        .collect();
    Ok(HttpResponse::Ok().json(ApiKeyList {
        object: ListObject::List,
        first_id: data.first().map(|key| key.id.clone()),
        last_id: data.last().map(|key| key.id.clone()),
        has_more,
        data,
    }))
}

/// A validated list query.
struct ListParams {
    after: Option<String>,
    order: Order,
    limit: i64,
    filter: ListFilter,
}

fn validate_list_query(query: ListQuery) -> Result<ListParams, ApiError> {
    let present = |value: Option<String>| value.filter(|v| !v.is_empty());
    let limit = match present(query.limit) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "limit",
                    format!("`limit` must be an integer from 1 to {MAX_LIMIT}, got {raw:?}."),
                )
            })?,
    };
    let order = match present(query.order).as_deref() {
        None | Some("asc") => ListOrder::Asc,
        Some("desc") => ListOrder::Desc,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "order",
                format!("`order` must be `asc` or `desc`, got {other:?}."),
            ));
        }
    };
    let after = present(query.after);
    if let Some(id) = &after
        && !plausible_key_id(id)
    {
        return Err(ApiError::invalid_param(
            "after",
            format!("No admin API key with id {id:?} exists, so there is no page after it."),
        ));
    }
    let status = match present(query.status).as_deref() {
        None => None,
        Some("active") => Some(KeyStatus::Active),
        Some("expired") => Some(KeyStatus::Expired),
        Some("disabled") => Some(KeyStatus::Disabled),
        Some(other) => {
            return Err(ApiError::invalid_param(
                "status",
                format!("`status` must be `active`, `expired` or `disabled`, got {other:?}."),
            ));
        }
    };
    let search = present(query.search);
    if let Some(text) = &search
        && (text.chars().count() > 256 || text.chars().any(char::is_control))
    {
        return Err(ApiError::invalid_param(
            "search",
            "`search` must be at most 256 characters, without control characters.",
        ));
    }
    Ok(ListParams {
        after,
        order: order.into(),
        limit,
        filter: ListFilter {
            search,
            status,
            now: 0,
        },
    })
}

//! What every list route shares: the `List<T>` envelope and the paging parameters `limit`,
//! `after` and `order` (and, where a list offers it, `page`).

use actix_web::web::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::ids;
use crate::models::admin_api_key::Order;

/// The default page size.
pub const DEFAULT_LIMIT: i64 = 20;
/// The largest page size.
pub const MAX_LIMIT: i64 = 100;

/// Always `list`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ListObject {
    #[serde(rename = "list")]
    List,
}

/// One page of a list, in OpenAI's envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub object: ListObject,
    pub data: Vec<T>,
    /// Id of the first item on this page; `null` when the page is empty.
    #[schema(required = true)]
    pub first_id: Option<String>,
    /// Id of the last item on this page; pass it as `after` to get the next page.
    #[schema(required = true)]
    pub last_id: Option<String>,
    /// Whether more items follow this page.
    pub has_more: bool,
    /// The page number asked for (an extension, only on a list asked for by `page`, which the
    /// admin keys list takes); absent when paging with `after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub page: Option<i64>,
    /// How many items match the request on all pages together (an extension, only beside
    /// `page`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub total: Option<i64>,
}

impl<T> List<T> {
    /// A page of `data`, whose items are identified by `id`.
    pub fn new(data: Vec<T>, has_more: bool, id: impl Fn(&T) -> &str) -> Self {
        Self {
            object: ListObject::List,
            first_id: data.first().map(|item| id(item).to_owned()),
            last_id: data.last().map(|item| id(item).to_owned()),
            has_more,
            data,
            page: None,
            total: None,
        }
    }
}

impl List<Bytes> {
    /// The envelope around items already rendered as JSON (cached bodies), written without
    /// parsing them again. The same fields, in the same order, as the derived form.
    pub fn to_json(&self) -> Bytes {
        let size: usize = self.data.iter().map(|item| item.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 128);
        out.extend_from_slice(br#"{"object":"list","data":["#);
        for (n, item) in self.data.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        let tail = ListTail {
            first_id: &self.first_id,
            last_id: &self.last_id,
            has_more: self.has_more,
            page: self.page,
            total: self.total,
        };
        // `tail` serialises as `{"first_id":…}`; splice its members in after the data.
        let tail = serde_json::to_vec(&tail).expect("ids and a flag always serialise");
        out.extend_from_slice(b"],");
        out.extend_from_slice(&tail[1..]);
        out.into()
    }
}

#[derive(Serialize)]
struct ListTail<'a> {
    first_id: &'a Option<String>,
    last_id: &'a Option<String>,
    has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

/// Where a page starts and how long it is.
#[derive(Clone, Debug)]
pub struct Pagination {
    /// 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub limit: i64,
    /// An id: the page starts right after it.
    pub after: Option<String>,
    /// Creation order; `asc` unless `order=desc`.
    pub order: Order,
}

impl Pagination {
    /// Takes `limit` and `after` from `query`, and `order` too when the list offers one
    /// (otherwise it stays `default_order`).
    pub fn take(
        query: &mut QueryParams,
        default_order: Order,
        offers_order: bool,
    ) -> Result<Self, ApiError> {
        let limit = match query.take("limit")? {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "limit",
                        format!("`limit` must be an integer from 1 to {MAX_LIMIT}."),
                    )
                })?,
        };
        let order = if offers_order {
            match query.take("order")?.as_deref() {
                None => default_order,
                Some("asc") => Order::Asc,
                Some("desc") => Order::Desc,
                Some(_) => {
                    return Err(ApiError::invalid_param(
                        "order",
                        "`order` must be `asc` or `desc`.",
                    ));
                }
            }
        } else {
            default_order
        };
        Ok(Self {
            limit,
            after: query.take("after")?,
            order,
        })
    }
}

/// How deep a numbered page may start: `(page - 1) * limit` at most this many items in. The
/// database reads and skips every item before a numbered page (OFFSET), so the bound keeps
/// the deepest one cheap; past it, page with `after`, whose cost does not grow with depth.
/// 10,000 is Elasticsearch's default result window, for the same reason.
pub const MAX_PAGE_OFFSET: i64 = 10_000;

/// Seed 002's `page`: a 1-based page number of `limit` items, instead of `after`. `None` when
/// absent; a 400 when it is not a whole number from 1 on, when it starts deeper than
/// [`MAX_PAGE_OFFSET`], or when `after` is sent too (two ways to say where a page starts).
pub fn take_page_number(
    query: &mut QueryParams,
    page: &Pagination,
) -> Result<Option<i64>, ApiError> {
    let Some(raw) = query.take("page")? else {
        return Ok(None);
    };
    if page.after.is_some() {
        return Err(ApiError::invalid_param(
            "page",
            "`page` and `after` both say where a page starts: send one of them, not both.",
        ));
    }
    let deepest = MAX_PAGE_OFFSET / page.limit + 1;
    raw.parse::<i64>()
        .ok()
        .filter(|number| (1..=deepest).contains(number))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "page",
                format!(
                    "`page` must be a whole number from 1 to {deepest} with `limit` {} (at \
                     most {MAX_PAGE_OFFSET} items deep); to go further, page with `after`.",
                    page.limit
                ),
            )
        })
}

/// The `owner_id` filter: a user id of our exact shape.
pub fn take_owner_id(query: &mut QueryParams) -> Result<Option<String>, ApiError> {
    let owner_id = query.take("owner_id")?;
    if owner_id
        .as_deref()
        .is_some_and(|id| !id.starts_with(ids::USER) || ids::ours(id).is_none())
    {
        return Err(ApiError::invalid_param(
            "owner_id",
            "`owner_id` takes a user id: `user_` and 24 letters or digits.",
        ));
    }
    Ok(owner_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_rendered_items_matches_the_derived_form() {
        let items = [r#"{"id":"a","n":1}"#, r#"{"id":"b","n":2}"#];
        let values: Vec<serde_json::Value> = items
            .iter()
            .map(|i| serde_json::from_str(i).unwrap())
            .collect();
        let derived = List::new(values, true, |v| v["id"].as_str().unwrap());
        let rendered = List {
            object: ListObject::List,
            data: items
                .iter()
                .map(|i| Bytes::from_static(i.as_bytes()))
                .collect(),
            first_id: Some("a".into()),
            last_id: Some("b".into()),
            has_more: true,
            page: None,
            total: None,
        };
        assert_eq!(
            rendered.to_json(),
            Bytes::from(serde_json::to_vec(&derived).unwrap())
        );
        let empty: List<Bytes> = List::new(vec![], false, |_| "");
        assert_eq!(
            &empty.to_json()[..],
            br#"{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}"#
        );
        let numbered: List<Bytes> = List {
            page: Some(3),
            total: Some(41),
            ..List::new(vec![], false, |_| "")
        };
        assert_eq!(
            &numbered.to_json()[..],
            br#"{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false,"page":3,"total":41}"#
        );
    }
}

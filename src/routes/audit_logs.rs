//! `GET /organization/audit_logs`: the append-only record of changes, in OpenAI's shape.
//!
//! The query string is parsed by hand because the array filters repeat their key
//! (`event_types[]=a&event_types[]=b`), which `web::Query` cannot collect.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, EventType};
use crate::auth::AdminKey;
use crate::db::run_blocking;
use crate::domain::Scope;
use crate::error::responses::SharedErrors;
use crate::error::{ApiError, ErrorResponse};
use crate::extract::QueryParams;
use crate::ids;
use crate::models::admin_api_key::Order;
use crate::models::audit_log::{self, AuditCursor, AuditFilter, AuditLogRow};
use crate::models::project;
use crate::routes::list::{List, Pagination, take_owner_id};
use crate::routes::method_not_allowed;
use crate::state::AppState;

const MAX_FILTER_VALUES: usize = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/audit_logs")
            .name("audit_logs")
            .route(web::get().to(list_entries))
            .default_service(method_not_allowed("GET")),
    );
}

/// One recorded event. Exactly one of the details fields (`api_key.created`, …,
/// `user.deleted`) is present: the one named by `type`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    /// Identifier of the entry; use it as `after` or `before`.
    pub id: String,
    /// The event type: `api_key.created`, `api_key.updated`, `api_key.deleted`,
    /// `invite.sent`, `invite.accepted`, `invite.deleted`, `user.added`, `user.updated` or
    /// `user.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change happened, in Unix seconds.
    pub effective_at: i64,
    /// Who made the change: `{"type":"api_key","api_key":{"id","type":"user","user":{"id","email"}}}`,
    /// or, for the command line and for accepting an invite,
    /// `{"type":"session","session":{"user":{"id","email"}}}`. A change made over HTTP also
    /// says where it came from, next to `user`: `ip_address` (the client, after the trusted
    /// proxies) and `user_agent` (its `User-Agent`, secrets redacted, at most 256 characters);
    /// each is left out when unknown. On an `api_key` actor both are an extension.
    #[schema(value_type = Object)]
    pub actor: Box<RawValue>,
    /// `{"id", "data": {"scopes", "name", "expires_at"}}` of the new key.
    #[serde(rename = "api_key.created", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub api_key_created: Option<Box<RawValue>>,
    /// `{"id", "changes_requested": {...}}`: the fields that were set (`name`, `enabled`,
    /// `scopes`, or `expires_at` and `rotated_to` for a rotation).
    #[serde(rename = "api_key.updated", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub api_key_updated: Option<Box<RawValue>>,
    /// `{"id"}` of the deleted key.
    #[serde(rename = "api_key.deleted", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub api_key_deleted: Option<Box<RawValue>>,
    /// `{"id", "data": {"email", "role"}}` of the new invite.
    #[serde(rename = "invite.sent", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub invite_sent: Option<Box<RawValue>>,
    /// `{"id"}` of the accepted invite.
    #[serde(rename = "invite.accepted", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub invite_accepted: Option<Box<RawValue>>,
    /// `{"id"}` of the withdrawn invite.
    #[serde(rename = "invite.deleted", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub invite_deleted: Option<Box<RawValue>>,
    /// `{"id", "data": {"role"}}` of the user who joined.
    #[serde(rename = "user.added", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub user_added: Option<Box<RawValue>>,
    /// `{"id", "changes_requested": {...}}`: the fields that were set (`role`, `name`,
    /// `enabled`).
    #[serde(rename = "user.updated", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub user_updated: Option<Box<RawValue>>,
    /// `{"id"}` of the deleted user.
    #[serde(rename = "user.deleted", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub user_deleted: Option<Box<RawValue>>,
    /// The project the change was made in, for changes to projects, their members and their
    /// rate limits; absent for the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<AuditLogProject>,
    /// `{"id", "data": {"name"}}` of the new project.
    #[serde(rename = "project.created", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub project_created: Option<Box<RawValue>>,
    /// `{"id", "changes_requested": {...}}`: the fields that were set (`title`, the new name;
    /// `external_key_id`).
    #[serde(rename = "project.updated", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub project_updated: Option<Box<RawValue>>,
    /// `{"id"}` of the archived project.
    #[serde(rename = "project.archived", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub project_archived: Option<Box<RawValue>>,
    /// `{"id": "rl-<model>", "changes_requested": {...}}`: the limits that were set.
    #[serde(rename = "rate_limit.updated", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub rate_limit_updated: Option<Box<RawValue>>,
    /// `{"id", "data": {"role"}}` of the new service account.
    #[serde(
        rename = "service_account.created",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub service_account_created: Option<Box<RawValue>>,
    /// `{"id", "changes_requested": {...}}`: the fields that were set (`role`, `name`).
    #[serde(
        rename = "service_account.updated",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub service_account_updated: Option<Box<RawValue>>,
    /// `{"id"}` of the deleted service account.
    #[serde(
        rename = "service_account.deleted",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub service_account_deleted: Option<Box<RawValue>>,
}

/// The project an entry is scoped to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogProject {
    /// The project's id.
    pub id: String,
    /// The project's name now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Query parameters (documentation only; see `parse_query`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditLogQuery {
    /// Only events after this Unix second.
    #[serde(rename = "effective_at[gt]")]
    effective_at_gt: Option<i64>,
    /// Only events at or after this Unix second.
    #[serde(rename = "effective_at[gte]")]
    effective_at_gte: Option<i64>,
    /// Only events before this Unix second.
    #[serde(rename = "effective_at[lt]")]
    effective_at_lt: Option<i64>,
    /// Only events at or before this Unix second.
    #[serde(rename = "effective_at[lte]")]
    effective_at_lte: Option<i64>,
    /// Only events of these types (repeat the parameter for several).
    #[serde(rename = "event_types[]")]
    event_types: Option<Vec<String>>,
    /// Only events made by these keys (or, for bootstrap, users).
    #[serde(rename = "actor_ids[]")]
    actor_ids: Option<Vec<String>>,
    /// Only events about these objects (keys, users or invites).
    #[serde(rename = "resource_ids[]")]
    resource_ids: Option<Vec<String>>,
    /// Only events made by this user or by one of their keys (an extension).
    owner_id: Option<String>,
    /// Only events scoped to these projects (repeat the parameter for several).
    #[serde(rename = "project_ids[]")]
    project_ids: Option<Vec<String>>,
    /// Page size (bounds in the schema).
    #[param(default = 20)]
    limit: Option<i64>,
    /// An entry id: the page holds the entries older than it (the next page).
    after: Option<String>,
    /// An entry id: the page holds the entries newer than it (the previous page).
    before: Option<String>,
}

struct Params {
    limit: i64,
    after: Option<String>,
    before: Option<String>,
    filter: AuditFilter,
}

/// List audit log entries
///
/// Returns recorded changes (keys, users, invites), newest first, with OpenAI's audit log filters and cursors.
/// Entries cannot be changed or deleted through the API.
#[utoipa::path(
    get,
    path = "/organization/audit_logs",
    operation_id = "list-audit-logs",
    tag = "Audit logs",
    params(AuditLogQuery),
    responses(
        (status = 200, description = "One page of entries.", body = List<AuditLog>),
        (status = 400, description = "A parameter is invalid; `param` names it.", body = ErrorResponse),
        SharedErrors,
    ),
    security(("AdminApiKeyAuth" = []))
)]
pub async fn list_entries(
    caller: AdminKey,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::AuditLogsRead)?;
    let Params {
        limit,
        after,
        before,
        filter,
    } = parse_query(req.query_string())?;
    let rows = run_blocking(&state.pool, move |conn| {
        let cursor = match (&after, &before) {
            (Some(id), _) => Some(cursor_at(conn, "after", id, AuditCursor::After)?),
            (None, Some(id)) => Some(cursor_at(conn, "before", id, AuditCursor::Before)?),
            (None, None) => None,
        };
        let (rows, has_more) = audit_log::list_page(conn, cursor.as_ref(), &filter, limit)?;
        let mut projects: Vec<String> = rows.iter().filter_map(|r| r.project_id.clone()).collect();
        projects.sort_unstable();
        projects.dedup();
        let names = project::names_of(conn, &projects)?;
        Ok((rows, has_more, names))
    })
    .await?;
    let (rows, has_more, names) = (rows.0, rows.1, rows.2);
    let names: HashMap<String, String> = names.into_iter().collect();
    let data = rows
        .into_iter()
        .map(|row| {
            let project = row.project_id.clone().map(|id| AuditLogProject {
                name: names.get(&id).cloned(),
                id,
            });
            AuditLog {
                project,
                ..AuditLog::from(row)
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(List::new(data, has_more, |entry: &AuditLog| &entry.id)))
}

fn cursor_at(
    conn: &mut crate::db::DbConnection,
    param: &str,
    id: &str,
    make: fn(i64, String) -> AuditCursor,
) -> Result<AuditCursor, ApiError> {
    let (at, id) = audit_log::position_of(conn, id)?.ok_or_else(|| {
        ApiError::invalid_param(
            param,
            match ids::ours(id) {
                Some(id) => format!("No audit log entry with id `{id}` exists."),
                None => format!(
                    "`{param}` must be the id of an existing audit log entry (`audit_log-` and 24 letters or digits)."
                ),
            },
        )
    })?;
    Ok(make(at, id))
}

fn parse_query(query: &str) -> Result<Params, ApiError> {
    let mut query = QueryParams::parse(query)?;
    // Upstream filters this service has nothing to match against: refuse rather than
    // silently return a wider result than asked for.
    query.refuse(&["actor_emails", "tenant_only"])?;
    let page = Pagination::take(&mut query, Order::Desc, false)?;
    let before = query.take("before")?;
    if page.after.is_some() && before.is_some() {
        return Err(ApiError::invalid_param(
            "before",
            "Give `after` or `before`, not both.",
        ));
    }
    let event_types = query.take_all("event_types[]", MAX_FILTER_VALUES)?;
    if event_types.iter().any(|t| EventType::parse(t).is_none()) {
        let known: Vec<_> = EventType::ALL.iter().map(|t| format!("`{t}`")).collect();
        return Err(ApiError::invalid_param(
            "event_types[]",
            format!("`event_types[]` accepts {}.", known.join(", ")),
        ));
    }
    let filter = AuditFilter {
        effective_gt: query.take_integer("effective_at[gt]")?,
        effective_gte: query.take_integer("effective_at[gte]")?,
        effective_lt: query.take_integer("effective_at[lt]")?,
        effective_lte: query.take_integer("effective_at[lte]")?,
        event_types,
        actor_ids: take_ids(&mut query, "actor_ids[]", "keys or users")?,
        resource_ids: take_ids(&mut query, "resource_ids[]", "keys, users or invites")?,
        owner_id: take_owner_id(&mut query)?,
        project_ids: take_ids(&mut query, "project_ids[]", "projects")?,
    };
    query.finish()?;
    Ok(Params {
        limit: page.limit,
        after: page.after,
        before,
        filter,
    })
}

/// The values of an id filter, each of our exact shape: anything else could match nothing, so
/// it is refused rather than answered with an empty page.
fn take_ids(query: &mut QueryParams, name: &str, of: &str) -> Result<Vec<String>, ApiError> {
    let values = query.take_all(name, MAX_FILTER_VALUES)?;
    if values.iter().any(|id| ids::ours(id).is_none()) {
        return Err(ApiError::invalid_param(
            name,
            format!("`{name}` takes ids of {of}, such as `key_` and 24 letters or digits."),
        ));
    }
    Ok(values)
}

impl From<AuditLogRow> for AuditLog {
    fn from(row: AuditLogRow) -> Self {
        // Both columns hold JSON this service wrote: served as stored (checked, not rebuilt).
        let parse = |text: String| {
            RawValue::from_string(text)
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
        };
        let details = Some(parse(row.details));
        let actor = audit::served_actor(
            &row.actor,
            row.ip_address.as_deref(),
            row.user_agent.as_deref(),
        )
        .unwrap_or(row.actor);
        let mut entry = AuditLog {
            actor: parse(actor),
            id: row.id,
            effective_at: row.effective_at,
            api_key_created: None,
            api_key_updated: None,
            api_key_deleted: None,
            invite_sent: None,
            invite_accepted: None,
            invite_deleted: None,
            user_added: None,
            user_updated: None,
            user_deleted: None,
            project: None,
            project_created: None,
            project_updated: None,
            project_archived: None,
            rate_limit_updated: None,
            service_account_created: None,
            service_account_updated: None,
            service_account_deleted: None,
            kind: row.type_,
        };
        match EventType::parse(&entry.kind) {
            Some(EventType::ApiKeyCreated) => entry.api_key_created = details,
            Some(EventType::ApiKeyUpdated) => entry.api_key_updated = details,
            Some(EventType::ApiKeyDeleted) => entry.api_key_deleted = details,
            Some(EventType::InviteSent) => entry.invite_sent = details,
            Some(EventType::InviteAccepted) => entry.invite_accepted = details,
            Some(EventType::InviteDeleted) => entry.invite_deleted = details,
            Some(EventType::UserAdded) => entry.user_added = details,
            Some(EventType::UserUpdated) => entry.user_updated = details,
            Some(EventType::UserDeleted) => entry.user_deleted = details,
            Some(EventType::ProjectCreated) => entry.project_created = details,
            Some(EventType::ProjectUpdated) => entry.project_updated = details,
            Some(EventType::ProjectArchived) => entry.project_archived = details,
            Some(EventType::RateLimitUpdated) => entry.rate_limit_updated = details,
            Some(EventType::ServiceAccountCreated) => entry.service_account_created = details,
            Some(EventType::ServiceAccountUpdated) => entry.service_account_updated = details,
            Some(EventType::ServiceAccountDeleted) => entry.service_account_deleted = details,
            None => {}
        }
        entry
    }
}

//! The `project_api_keys` table: the keys applications hold, owned by a project member
//! (`sk-proj-…`) or by a service account (`sk-svcacct-…`).
//!
//! Listing is keyset pagination over `(created_at, id)` within a project, oldest first.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::domain::{McpPolicy, Permissions};
use crate::models::user::User;
use crate::schema::{project_api_keys, project_users, projects, service_accounts, users};

/// A stored project key (never the plaintext: only its hash).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = project_api_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ProjectApiKeyRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub redacted_value: String,
    pub owner_user_id: Option<String>,
    pub service_account_id: Option<String>,
    pub scopes: Permissions,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub enabled: bool,
    /// The MCP policy as stored (its preset not resolved).
    pub mcp: McpPolicy,
}

/// A key to insert (enabled).
#[derive(Debug, Insertable)]
#[diesel(table_name = project_api_keys)]
pub struct NewProjectApiKey<'a> {
    pub id: &'a str,
    pub project_id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub redacted_value: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub service_account_id: Option<&'a str>,
    pub scopes: &'a Permissions,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub mcp: &'a McpPolicy,
}

/// Who owns a project key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwner {
    /// A member of the project (an organisation user).
    User(String),
    /// A service account of the project.
    ServiceAccount(String),
}

impl KeyOwner {
    /// `user` or `service_account`, as the wire names the owner's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::ServiceAccount(_) => "service_account",
        }
    }

    /// The owner's id.
    pub fn id(&self) -> &str {
        match self {
            Self::User(id) | Self::ServiceAccount(id) => id,
        }
    }

    fn of(row: &ProjectApiKeyRow) -> Self {
        match (&row.owner_user_id, &row.service_account_id) {
            (Some(user), _) => Self::User(user.clone()),
            (None, Some(account)) => Self::ServiceAccount(account.clone()),
            // The table's CHECK makes exactly one of the two set.
            (None, None) => Self::ServiceAccount(String::new()),
        }
    }
}

/// What verifying a project key needs to know, read in one go on a cache miss.
#[derive(Clone, Debug)]
pub struct ProjectAuthRecord {
    pub id: String,
    pub project_id: String,
    pub owner: KeyOwner,
    pub scopes: Permissions,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Whether the owner may use the project now: the project is not archived, and the
    /// member is still in it and enabled (a service account that exists always may).
    pub owner_has_access: bool,
    /// The MCP policy as stored (its preset not resolved).
    pub mcp: McpPolicy,
}

/// The owner of a key as the key object shows it.
#[derive(Clone, Debug)]
pub enum OwnerDetails {
    /// The user, and their role in the project (`None` once they left it).
    User(User, Option<String>),
    /// The service account: id, name, role, created_at.
    ServiceAccount(ServiceAccountOwner),
}

/// The service account that owns a key.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = service_accounts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ServiceAccountOwner {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

/// A key with its owner and whether that owner has access to the project now.
#[derive(Clone, Debug)]
pub struct KeyWithOwner {
    pub key: ProjectApiKeyRow,
    pub owner: OwnerDetails,
    pub owner_has_access: bool,
}

/// Inserts one key.
pub fn insert(conn: &mut DbConnection, key: &NewProjectApiKey<'_>) -> QueryResult<()> {
    diesel::insert_into(project_api_keys::table)
        .values(key)
        .execute(conn)
        .map(drop)
}

/// The auth record of the key stored with `key_hash`: the key and its project in one
/// statement, and for a member's key their standing in a second.
pub fn find_auth_record(
    conn: &mut DbConnection,
    key_hash: &str,
) -> QueryResult<Option<ProjectAuthRecord>> {
    let Some((row, archived_at)) = project_api_keys::table
        .inner_join(projects::table)
        .filter(project_api_keys::key_hash.eq(key_hash))
        .select((ProjectApiKeyRow::as_select(), projects::archived_at))
        .first::<(ProjectApiKeyRow, Option<i64>)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let owner = KeyOwner::of(&row);
    let owner_has_access = archived_at.is_none()
        && match &owner {
            KeyOwner::User(user_id) => member_enabled(conn, &row.project_id, user_id)?,
            // The key row exists, so its service account does (deleting one deletes its keys).
            KeyOwner::ServiceAccount(_) => true,
        };
    Ok(Some(ProjectAuthRecord {
        id: row.id,
        project_id: row.project_id,
        owner,
        scopes: row.scopes,
        enabled: row.enabled,
        expires_at: row.expires_at,
        created_at: row.created_at,
        owner_has_access,
        mcp: row.mcp,
    }))
}

/// True when `user_id` is a member of `project_id` and enabled.
fn member_enabled(conn: &mut DbConnection, project_id: &str, user_id: &str) -> QueryResult<bool> {
    Ok(project_users::table
        .inner_join(users::table)
        .filter(project_users::project_id.eq(project_id))
        .filter(project_users::user_id.eq(user_id))
        .select(users::enabled)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// The key `id` of project `project_id`, with its owner.
pub fn find(
    conn: &mut DbConnection,
    project_id: &str,
    id: &str,
) -> QueryResult<Option<KeyWithOwner>> {
    let row = project_api_keys::table
        .filter(project_api_keys::project_id.eq(project_id))
        .filter(project_api_keys::id.eq(id))
        .select(ProjectApiKeyRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        Some(row) => with_owner(conn, row).map(Some),
        None => Ok(None),
    }
}

/// `row` with its owner and whether they have access to the project now.
fn with_owner(conn: &mut DbConnection, row: ProjectApiKeyRow) -> QueryResult<KeyWithOwner> {
    let archived = projects::table
        .filter(projects::id.eq(&row.project_id))
        .select(projects::archived_at)
        .first::<Option<i64>>(conn)?
        .is_some();
    let (owner, active) = match KeyOwner::of(&row) {
        KeyOwner::User(user_id) => {
            let user = users::table
                .filter(users::id.eq(&user_id))
                .select(User::as_select())
                .first(conn)?;
            let role = project_users::table
                .filter(project_users::project_id.eq(&row.project_id))
                .filter(project_users::user_id.eq(&user_id))
                .select(project_users::role)
                .first::<String>(conn)
                .optional()?;
            let active = role.is_some() && user.enabled;
            (OwnerDetails::User(user, role), active)
        }
        KeyOwner::ServiceAccount(account_id) => {
            let account = service_accounts::table
                .filter(service_accounts::id.eq(&account_id))
                .select(ServiceAccountOwner::as_select())
                .first(conn)?;
            (OwnerDetails::ServiceAccount(account), true)
        }
    };
    Ok(KeyWithOwner {
        key: row,
        owner,
        owner_has_access: active && !archived,
    })
}

/// Up to `limit` keys of `project_id` after the key `after` (from the start with `None`), in
/// creation order, with their owners. `None` if `after` is not a key of the project.
pub fn list_page(
    conn: &mut DbConnection,
    project_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Option<Vec<KeyWithOwner>>> {
    let query = project_api_keys::table
        .filter(project_api_keys::project_id.eq(project_id))
        .order((project_api_keys::created_at, project_api_keys::id))
        .select(ProjectApiKeyRow::as_select())
        .limit(limit);
    let rows = match after {
        None => query.load(conn)?,
        Some(after) => {
            let Some(created_at) = project_api_keys::table
                .filter(project_api_keys::project_id.eq(project_id))
                .filter(project_api_keys::id.eq(after))
                .select(project_api_keys::created_at)
                .first::<i64>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            query
                .filter(
                    project_api_keys::created_at
                        .gt(created_at)
                        .or(project_api_keys::created_at
                            .eq(created_at)
                            .and(project_api_keys::id.gt(after))),
                )
                .load(conn)?
        }
    };
    rows.into_iter()
        .map(|row| with_owner(conn, row))
        .collect::<QueryResult<_>>()
        .map(Some)
}

/// Deletes the key `id` of `project_id`; its hash, if it existed.
pub fn delete(conn: &mut DbConnection, project_id: &str, id: &str) -> QueryResult<Option<String>> {
    diesel::delete(
        project_api_keys::table
            .filter(project_api_keys::project_id.eq(project_id))
            .filter(project_api_keys::id.eq(id)),
    )
    .returning(project_api_keys::key_hash)
    .get_result(conn)
    .optional()
}

/// A key deleted with its owner.
#[derive(Clone, Debug, Queryable)]
pub struct DeletedKey {
    pub id: String,
    pub project_id: String,
    pub key_hash: String,
}

/// Deletes every key of the service account `account_id`.
pub fn delete_of_service_account(
    conn: &mut DbConnection,
    account_id: &str,
) -> QueryResult<Vec<DeletedKey>> {
    diesel::delete(
        project_api_keys::table.filter(project_api_keys::service_account_id.eq(account_id)),
    )
    .returning((
        project_api_keys::id,
        project_api_keys::project_id,
        project_api_keys::key_hash,
    ))
    .get_results(conn)
}

/// Deletes every key the user `user_id` owns, in any project.
pub fn delete_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<DeletedKey>> {
    diesel::delete(project_api_keys::table.filter(project_api_keys::owner_user_id.eq(user_id)))
        .returning((
            project_api_keys::id,
            project_api_keys::project_id,
            project_api_keys::key_hash,
        ))
        .get_results(conn)
}

/// True when `user_id` is a member of `project_id`.
pub fn is_member(conn: &mut DbConnection, project_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        project_users::table
            .filter(project_users::project_id.eq(project_id))
            .filter(project_users::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// Writes a batch of `(key id, used at)`, moving each `last_used_at` only forward; ids that
/// are not project keys (admin keys share the batch) match nothing. As
/// `admin_api_key::record_last_used`, one statement whatever the batch size.
pub fn record_last_used(conn: &mut DbConnection, uses: &[(String, i64)]) -> QueryResult<usize> {
    super::record_last_used(conn, super::KeyTable::Project, uses)
}

/// Up to `limit` stored hashes after `after`, in hash order (for the set of live hashes).
pub fn hashes_page(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let query = project_api_keys::table
        .select(project_api_keys::key_hash)
        .order(project_api_keys::key_hash)
        .limit(limit);
    match after {
        Some(after) => query
            .filter(project_api_keys::key_hash.gt(after))
            .load(conn),
        None => query.load(conn),
    }
}

/// How many project keys are stored.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    project_api_keys::table.count().get_result(conn)
}

/// Sets the MCP policy of the key `id` of `project_id`; returns whether it exists.
pub fn set_mcp(
    conn: &mut DbConnection,
    project_id: &str,
    id: &str,
    mcp: &McpPolicy,
) -> QueryResult<bool> {
    diesel::update(
        project_api_keys::table
            .filter(project_api_keys::project_id.eq(project_id))
            .filter(project_api_keys::id.eq(id)),
    )
    .set(project_api_keys::mcp.eq(mcp))
    .execute(conn)
    .map(|updated| updated > 0)
}

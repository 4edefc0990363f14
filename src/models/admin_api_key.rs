//! The `admin_api_keys` table.
//!
//! Listing is keyset pagination over the `(created_at, id)` index: the cursor is the last key
//! seen, ties within one second are broken by id, and no cursor query uses OFFSET or COUNT, so
//! a deep page costs the same as the first. Numbered pages (seed 002's `page`) are the
//! exception: OFFSET and a COUNT of the matches, bounded by the route (`routes::list`).

use diesel::prelude::*;

use diesel::sql_types::{Bool, Text};

use crate::db::DbConnection;
use crate::domain::{McpPolicy, Permissions, Scope, Scopes};
use crate::models::audit_log::AuditLogRow;
use crate::models::user::User;
use crate::schema::{admin_api_keys, audit_logs, users};

diesel::define_sql_function!(fn lower(x: Text) -> Text);
diesel::define_sql_function!(fn replace(text: Text, from: Text, to: Text) -> Text);

/// A stored key (never the plaintext: only its hash).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = admin_api_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AdminApiKeyRow {
    pub id: String,
    pub name: String,
    pub redacted_value: String,
    pub owner_id: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub scopes: Scopes,
    pub enabled: bool,
    pub permissions: Permissions,
    /// The MCP policy as stored (its preset not resolved).
    pub mcp: McpPolicy,
    /// Moves with every change to the key but its `last_used_at` (a trigger moves it).
    pub revision: i64,
}

/// The insert of a key, returning its row.
macro_rules! insert_query {
    ($key:expr) => {{
        use crate::schema::admin_api_keys::dsl::*;
        // Listed in `AdminApiKeyRow`'s order: `as_returning()` has no `MultiConnection`
        // support.
        diesel::insert_into(admin_api_keys).values($key).returning((
            id,
            name,
            redacted_value,
            owner_id,
            created_at,
            last_used_at,
            expires_at,
            scopes,
            enabled,
            permissions,
            mcp,
            revision,
        ))
    }};
}

/// A key to insert (enabled).
#[derive(Debug, Insertable)]
#[diesel(table_name = admin_api_keys)]
pub struct NewAdminApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub redacted_value: &'a str,
    pub owner_id: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub scopes: Scopes,
    pub permissions: Permissions,
    pub mcp: &'a McpPolicy,
}

/// A partial update: `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = admin_api_keys)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub scopes: Option<Scopes>,
    pub permissions: Option<Permissions>,
    /// Only ever earlier (`services::keys::update`).
    pub expires_at: Option<i64>,
    pub mcp: Option<McpPolicy>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.enabled.is_none()
            && self.scopes.is_none()
            && self.permissions.is_none()
            && self.expires_at.is_none()
            && self.mcp.is_none()
    }
}

/// What authentication needs to know about a key.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = admin_api_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuthRecord {
    pub id: String,
    pub owner_id: String,
    pub expires_at: Option<i64>,
    pub scopes: Scopes,
    pub enabled: bool,
    pub permissions: Permissions,
    /// The MCP policy as stored (its preset not resolved).
    pub mcp: McpPolicy,
}

/// A key with its owner, as the API shows it.
pub type KeyWithOwner = (AdminApiKeyRow, User);

/// Direction of a listing by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// The position of a key in creation order.
#[derive(Clone, Debug)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

/// How [`lock_keys`] locks key rows on PostgreSQL, until the transaction ends; SQLite runs
/// one write at a time, so nothing needs locking there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLock {
    /// `FOR SHARE`: the row cannot change or go away; readers and other sharers proceed.
    Share,
    /// `FOR UPDATE`: for a transaction that goes on to change or delete the rows itself.
    Update,
}

/// Locks the rows of the keys `ids` (those that exist) until the transaction ends. The locks
/// are taken in id order, as the `last_used_at` flush takes its own, so a write and a flush
/// never wait on each other in a cycle. Only key rows are locked, never their owners'.
pub fn lock_keys(conn: &mut DbConnection, ids: &[&str], lock: RowLock) -> QueryResult<()> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let query = admin_api_keys::table
        .filter(admin_api_keys::id.eq_any(ids))
        .order(admin_api_keys::id)
        .select(admin_api_keys::id);
    match lock {
        RowLock::Share => query.for_share().load::<String>(pg)?,
        RowLock::Update => query.for_update().load::<String>(pg)?,
    };
    Ok(())
}

/// The auth record of the key `key_id` with its owner (for a write to check its caller; lock
/// the row first with [`lock_keys`]).
pub fn find_caller(
    conn: &mut DbConnection,
    key_id: &str,
) -> QueryResult<Option<(AuthRecord, User)>> {
    // Run on the backend's own connection, whose statement cache keeps this query prepared
    // (through `MultiConnection` it was prepared again on every call: ~30k instructions).
    macro_rules! query {
        () => {
            admin_api_keys::table
                .inner_join(users::table)
                .filter(admin_api_keys::id.eq(key_id))
                .select((AuthRecord::as_select(), User::as_select()))
        };
    }
    match conn {
        DbConnection::Pg(pg) => query!().first(pg).optional(),
        DbConnection::Sqlite(sqlite) => query!().first(sqlite).optional(),
    }
}

/// [`find_caller`], with the key's row and its owner's locked `FOR SHARE` by the same
/// statement on PostgreSQL (key first, then owner: the order [`lock_keys`] then
/// `user::lock` take them in), so neither can change or go away until the transaction ends.
pub fn find_caller_locked(
    conn: &mut DbConnection,
    key_id: &str,
) -> QueryResult<Option<(AuthRecord, User)>> {
    match conn {
        DbConnection::Pg(pg) => admin_api_keys::table
            .inner_join(users::table)
            .filter(admin_api_keys::id.eq(key_id))
            .select((AuthRecord::as_select(), User::as_select()))
            .for_share()
            .first(pg)
            .optional(),
        // One write at a time: nothing to lock.
        DbConnection::Sqlite(_) => find_caller(conn, key_id),
    }
}

/// The key that replaced `key_id` by rotation, if it still exists.
pub fn live_successor(conn: &mut DbConnection, key_id: &str) -> QueryResult<Option<String>> {
    let successor: Option<Option<String>> = admin_api_keys::table
        .filter(admin_api_keys::id.eq(key_id))
        .select(admin_api_keys::rotated_to)
        .first(conn)
        .optional()?;
    let Some(successor) = successor.flatten() else {
        return Ok(None);
    };
    admin_api_keys::table
        .filter(admin_api_keys::id.eq(&successor))
        .select(admin_api_keys::id)
        .first(conn)
        .optional()
}

/// Inserts one key and returns it as stored (one statement: `RETURNING`).
pub fn insert(conn: &mut DbConnection, key: &NewAdminApiKey<'_>) -> QueryResult<AdminApiKeyRow> {
    insert_query!(key).get_result(conn)
}

/// [`insert`] with the audit entry that records it, in one statement on PostgreSQL (see
/// [`WithWrite`](crate::models::WithWrite)); two on SQLite, where a statement costs no round
/// trip.
pub fn insert_audited(
    conn: &mut DbConnection,
    key: &NewAdminApiKey<'_>,
    entry: &AuditLogRow,
) -> QueryResult<AdminApiKeyRow> {
    match conn {
        DbConnection::Pg(pg) => crate::models::WithWrite::new(
            diesel::insert_into(audit_logs::table).values(entry),
            insert_query!(key),
        )
        .get_result(pg),
        DbConnection::Sqlite(_) => {
            let row = insert(conn, key)?;
            crate::models::audit_log::insert(conn, entry)?;
            Ok(row)
        }
    }
}

/// One key with its owner.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<KeyWithOwner>> {
    admin_api_keys::table
        .inner_join(users::table)
        .filter(admin_api_keys::id.eq(id))
        .select((AdminApiKeyRow::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// The auth record of the key with this hash, with its owner.
pub fn find_auth_record(
    conn: &mut DbConnection,
    key_hash: &str,
) -> QueryResult<Option<(AuthRecord, User)>> {
    admin_api_keys::table
        .inner_join(users::table)
        .filter(admin_api_keys::key_hash.eq(key_hash))
        .select((AuthRecord::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

/// Where the key `id` sits in creation order, if it exists.
pub fn cursor_of(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Cursor>> {
    admin_api_keys::table
        .filter(admin_api_keys::id.eq(id))
        .select((admin_api_keys::created_at, admin_api_keys::id))
        .first::<(i64, String)>(conn)
        .optional()
        .map(|found| found.map(|(created_at, id)| Cursor { created_at, id }))
}

/// The state of a key for the `status` filter. Exclusive: a disabled key is `Disabled`
/// whether or not it has also expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Disabled,
}

/// Narrows a listing; every part is optional and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Case-insensitive substring of the name, an exact id, or a prefix of `redacted_value`.
    pub search: Option<String>,
    pub status: Option<KeyStatus>,
    /// Only keys of this owner.
    pub owner_id: Option<String>,
    /// Only keys holding exactly this permission string.
    pub permission: Option<String>,
    /// The time `status` is judged at.
    pub now: i64,
}

/// `text` with LIKE's wildcards escaped (escape character `\`).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a list page reads of each key when the rest may come from the view cache: the id,
/// the revision (which every other change moves) and `last_used_at` (which moves the
/// revision not). A cached view is used only if it agrees on all three.
#[derive(Clone, Debug, Queryable)]
pub struct Listed {
    pub id: String,
    pub revision: i64,
    pub last_used_at: Option<i64>,
}

impl Listed {
    /// Whether `row` shows this key as the listing read it.
    pub fn matches(&self, row: &AdminApiKeyRow) -> bool {
        self.id == row.id && self.revision == row.revision && self.last_used_at == row.last_used_at
    }
}

/// The body of both list queries: `$select` from `$source`, filtered, from the cursor, in
/// order. Every filter is a bound parameter of one fixed statement (an absent filter passes a
/// flag that lets every row through), so each of the four shapes (order × cursor) has a
/// static type: Diesel prepares it once per connection and skips building its SQL again.
/// `$page` from the cursor `$after`, in `$order`. The bare range on created_at lets the index
/// scan start at the cursor; the OR then drops the ties at or before the cursor id.
macro_rules! ordered_page {
    ($conn:expr, $page:expr, $order:expr, $after:expr) => {{
        use crate::schema::admin_api_keys::dsl::{created_at, id};
        let page = $page;
        match ($order, $after) {
            (Order::Asc, None) => page.order((created_at.asc(), id.asc())).load($conn),
            (Order::Desc, None) => page.order((created_at.desc(), id.desc())).load($conn),
            (Order::Asc, Some(c)) => page
                .filter(
                    created_at
                        .ge(c.created_at)
                        .and(created_at.gt(c.created_at).or(id.gt(c.id.clone()))),
                )
                .order((created_at.asc(), id.asc()))
                .load($conn),
            (Order::Desc, Some(c)) => page
                .filter(
                    created_at
                        .le(c.created_at)
                        .and(created_at.lt(c.created_at).or(id.lt(c.id.clone()))),
                )
                .order((created_at.desc(), id.desc()))
                .load($conn),
        }
    }};
}

/// The WHERE clause of a filtered listing, as one expression of bound parameters (an absent
/// filter passes a flag that lets every row through).
macro_rules! key_filter {
    ($filter:expr) => {{
        use crate::schema::admin_api_keys::dsl::{
            enabled, expires_at, id, name, owner_id, permissions, redacted_value,
        };
        use diesel::IntoSql;
        let filter: &ListFilter = $filter;
        let search = filter.search.clone().unwrap_or_default();
        let needle = like_literal(&search);
        let allow = |status: KeyStatus| filter.status.is_none_or(|wanted| wanted == status);
        let now = filter.now;
        // Both sides go through the database's lower(), so case folding is consistent
        // (ASCII-only on SQLite, locale-aware on PostgreSQL).
        let matches_search = filter
            .search
            .is_none()
            .into_sql::<Bool>()
            .or(lower(name).like(lower(format!("%{needle}%"))).escape('\\'))
            .or(id.eq(search))
            .or(lower(redacted_value)
                .like(lower(format!("{needle}%")))
                .escape('\\'));
        let matches_status = enabled
            .eq(false)
            .and(allow(KeyStatus::Disabled).into_sql::<Bool>())
            .or(enabled
                .eq(true)
                .and(expires_at.le(now))
                .and(allow(KeyStatus::Expired).into_sql::<Bool>()))
            .or(enabled
                .eq(true)
                .and(expires_at.is_null().or(expires_at.gt(now)))
                .and(allow(KeyStatus::Active).into_sql::<Bool>()));
        let matches_owner = filter
            .owner_id
            .is_none()
            .into_sql::<Bool>()
            .or(owner_id.eq(filter.owner_id.clone().unwrap_or_default()));
        // Matched as a whole entry of the stored, space-separated list (as the guard's scopes).
        let padded = || " ".into_sql::<Text>().concat(permissions).concat(" ");
        let matches_permission = filter.permission.is_none().into_sql::<Bool>().or(replace(
            padded(),
            format!(" {} ", filter.permission.as_deref().unwrap_or_default()),
            "",
        )
        .ne(padded()));
        matches_search
            .and(matches_status)
            .and(matches_owner)
            .and(matches_permission)
    }};
}

macro_rules! keys_page {
    ($conn:expr, $source:expr, $select:expr, $after:expr, $order:expr, $limit:expr, $filter:expr) => {{
        let (conn, after, order, limit, filter): (
            &mut DbConnection,
            Option<&Cursor>,
            Order,
            i64,
            &ListFilter,
        ) = ($conn, $after, $order, $limit, $filter);
        // Without a filter the statement has no filter at all: every bound value costs a
        // trip through the backend's bind machinery, on every request. Run on the backend's
        // own connection: through `MultiConnection` each execution walks the query once
        // more to serialise it, and every value is decoded through one more layer.
        match conn {
            DbConnection::Pg(conn) => {
                let page = $source.select($select).limit(limit);
                if filter.is_empty() {
                    ordered_page!(conn, page, order, after)
                } else {
                    ordered_page!(conn, page.filter(key_filter!(filter)), order, after)
                }
            }
            DbConnection::Sqlite(conn) => {
                let page = $source.select($select).limit(limit);
                if filter.is_empty() {
                    ordered_page!(conn, page, order, after)
                } else {
                    ordered_page!(conn, page.filter(key_filter!(filter)), order, after)
                }
            }
        }
    }};
}

/// A numbered page: `limit` keys from `offset` on in `order` that pass `filter`, as a boxed
/// statement (one shape whatever the filter; this path is not the hot one).
macro_rules! numbered_page {
    ($conn:expr, $source:expr, $select:expr, $order:expr, $offset:expr, $limit:expr, $filter:expr) => {{
        use crate::schema::admin_api_keys::dsl::{created_at, id};
        let (conn, order, offset, limit, filter): (
            &mut DbConnection,
            Order,
            i64,
            i64,
            &ListFilter,
        ) = ($conn, $order, $offset, $limit, $filter);
        let query = $source
            .select($select)
            .filter(key_filter!(filter))
            .limit(limit)
            .offset(offset)
            .into_boxed();
        match order {
            Order::Asc => query.order((created_at.asc(), id.asc())).load(conn),
            Order::Desc => query.order((created_at.desc(), id.desc())).load(conn),
        }
    }};
}

impl ListFilter {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.search.is_none()
            && self.status.is_none()
            && self.owner_id.is_none()
            && self.permission.is_none()
    }
}

/// Up to `limit` keys strictly after `after` in `order` that pass `filter`, as [`Listed`].
pub fn list_page(
    conn: &mut DbConnection,
    after: Option<&Cursor>,
    order: Order,
    limit: i64,
    filter: &ListFilter,
) -> QueryResult<Vec<Listed>> {
    use crate::schema::admin_api_keys::dsl::*;
    let columns = (id, revision, last_used_at);
    keys_page!(conn, admin_api_keys, columns, after, order, limit, filter)
}

/// The same page as [`list_page`], whole keys with their owners.
pub fn list_page_keys(
    conn: &mut DbConnection,
    after: Option<&Cursor>,
    order: Order,
    limit: i64,
    filter: &ListFilter,
) -> QueryResult<Vec<KeyWithOwner>> {
    keys_page!(
        conn,
        admin_api_keys::table.inner_join(users::table),
        (AdminApiKeyRow::as_select(), User::as_select()),
        after,
        order,
        limit,
        filter
    )
}

/// Page `offset / limit + 1` of the keys that pass `filter`, as [`list_page`] reads them:
/// the database skips `offset` matching rows to get there (see `routes::list` for the bound).
pub fn numbered_page(
    conn: &mut DbConnection,
    order: Order,
    offset: i64,
    limit: i64,
    filter: &ListFilter,
) -> QueryResult<Vec<Listed>> {
    use crate::schema::admin_api_keys::dsl::*;
    let columns = (id, revision, last_used_at);
    numbered_page!(conn, admin_api_keys, columns, order, offset, limit, filter)
}

/// The same page as [`numbered_page`], whole keys with their owners.
pub fn numbered_page_keys(
    conn: &mut DbConnection,
    order: Order,
    offset: i64,
    limit: i64,
    filter: &ListFilter,
) -> QueryResult<Vec<KeyWithOwner>> {
    let source = admin_api_keys::table.inner_join(users::table);
    let columns = (AdminApiKeyRow::as_select(), User::as_select());
    numbered_page!(conn, source, columns, order, offset, limit, filter)
}

/// How many keys pass `filter` (every one of them is counted: the cost grows with the
/// result, which is why only numbered pages ask).
pub fn count_matching(conn: &mut DbConnection, filter: &ListFilter) -> QueryResult<i64> {
    if filter.is_empty() {
        return count(conn);
    }
    admin_api_keys::table
        .filter(key_filter!(filter))
        .count()
        .get_result(conn)
}

/// Deletes a key; returns whether it existed.
pub fn delete(conn: &mut DbConnection, key_id: &str) -> QueryResult<bool> {
    diesel::delete(admin_api_keys::table.filter(admin_api_keys::id.eq(key_id)))
        .execute(conn)
        .map(|deleted| deleted > 0)
}

/// Applies `changes` to a key; returns whether it exists.
pub fn update(conn: &mut DbConnection, key_id: &str, changes: &KeyChanges) -> QueryResult<bool> {
    let target = admin_api_keys::table.filter(admin_api_keys::id.eq(key_id));
    if changes.is_empty() {
        return diesel::select(diesel::dsl::exists(target)).get_result(conn);
    }
    diesel::update(target)
        .set(changes)
        .execute(conn)
        .map(|updated| updated > 0)
}

/// Records `successor` as the key that replaced `key_id`, and makes `key_id` expire at `at`
/// unless it already expires sooner; returns whether its expiry moved.
pub fn retire(
    conn: &mut DbConnection,
    key_id: &str,
    at: i64,
    successor: &str,
) -> QueryResult<bool> {
    use crate::schema::admin_api_keys::dsl::{expires_at, id, rotated_to};
    diesel::update(admin_api_keys::table.filter(id.eq(key_id)))
        .set(rotated_to.eq(successor))
        .execute(conn)?;
    diesel::update(
        admin_api_keys::table.filter(
            id.eq(key_id)
                .and(expires_at.is_null().or(expires_at.gt(at))),
        ),
    )
    .set(expires_at.eq(at))
    .execute(conn)
    .map(|changed| changed > 0)
}

/// Whether some enabled key still valid at `valid_at`, of an enabled owner (role `owner`),
/// holds both `admin_api_keys.write` and `users.write`: someone can still run the
/// organisation. Stops at the first match.
///
/// Each scope is matched as a whole name in the stored, space-separated list: `' ' || scopes
/// || ' '` must contain `' ' || name || ' '` (tested with `replace`, which has no wildcards
/// and means the same on both backends).
pub fn any_active_admin(conn: &mut DbConnection, valid_at: i64) -> QueryResult<bool> {
    use crate::schema::admin_api_keys::dsl::{enabled, expires_at, scopes};
    use diesel::IntoSql;
    let padded = || " ".into_sql::<Text>().concat(scopes).concat(" ");
    let holds = |scope: Scope| replace(padded(), format!(" {} ", scope.as_str()), "").ne(padded());
    diesel::select(diesel::dsl::exists(
        admin_api_keys::table.inner_join(users::table).filter(
            enabled
                .eq(true)
                .and(expires_at.is_null().or(expires_at.gt(valid_at)))
                .and(users::enabled.eq(true))
                .and(users::role.eq(crate::domain::Role::Owner.as_str()))
                .and(holds(Scope::AdminApiKeysWrite))
                .and(holds(Scope::UsersWrite)),
        ),
    ))
    .get_result(conn)
}

/// The ids of the keys `owner_id` owns, in id order.
pub fn ids_of_owner(conn: &mut DbConnection, owner_id: &str) -> QueryResult<Vec<String>> {
    admin_api_keys::table
        .filter(admin_api_keys::owner_id.eq(owner_id))
        .order(admin_api_keys::id)
        .select(admin_api_keys::id)
        .load(conn)
}

/// The permissions of every key of `owner_id` that works at `now` (enabled and unexpired).
pub fn live_permissions_of_owner(
    conn: &mut DbConnection,
    owner_id: &str,
    now: i64,
) -> QueryResult<Vec<Permissions>> {
    admin_api_keys::table
        .filter(admin_api_keys::owner_id.eq(owner_id))
        .filter(admin_api_keys::enabled.eq(true))
        .filter(
            admin_api_keys::expires_at
                .is_null()
                .or(admin_api_keys::expires_at.gt(now)),
        )
        .filter(admin_api_keys::permissions.ne(""))
        .select(admin_api_keys::permissions)
        .load(conn)
}

/// Deletes every key `owner_id` owns; returns their ids, in id order.
pub fn delete_of_owner(conn: &mut DbConnection, owner_id: &str) -> QueryResult<Vec<String>> {
    let ids = ids_of_owner(conn, owner_id)?;
    diesel::delete(admin_api_keys::table.filter(admin_api_keys::owner_id.eq(owner_id)))
        .execute(conn)?;
    Ok(ids)
}

/// On PostgreSQL, serialises changes that must keep an active writer (held until the
/// transaction ends), so two concurrent disables cannot each count on the other key.
/// SQLite already runs one write transaction at a time (see `db::write_transaction`).
pub fn lock_key_guard(conn: &mut DbConnection) -> QueryResult<()> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7306640870925985637)").execute(pg)?;
    }
    Ok(())
}

/// Moves `last_used_at` forward for a batch of keys in one statement. Never moves it back,
/// so replicas flushing the same key in any order converge on the latest use. Deleted keys
/// are skipped silently.
///
/// The batch travels as two arrays on PostgreSQL and as one JSON array on SQLite, so the
/// statement text (and its cached plan) is the same whatever the batch size.
pub fn record_last_used(conn: &mut DbConnection, uses: &[(String, i64)]) -> QueryResult<usize> {
    super::record_last_used(conn, super::KeyTable::Admin, uses)
}

/// Up to `limit` stored key hashes after `after` (all from the start with `None`), in hash
/// order: the set of live hashes is loaded page by page (see `cache::keyset`), on the
/// `key_hash` unique index.
pub fn hashes_page(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let query = admin_api_keys::table
        .select(admin_api_keys::key_hash)
        .order(admin_api_keys::key_hash)
        .limit(limit);
    match after {
        Some(after) => query.filter(admin_api_keys::key_hash.gt(after)).load(conn),
        None => query.load(conn),
    }
}

/// The hashes of the keys `ids` (those that exist), in no particular order.
pub fn hashes_of(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<String>> {
    admin_api_keys::table
        .filter(admin_api_keys::id.eq_any(ids))
        .select(admin_api_keys::key_hash)
        .load(conn)
}

/// How many keys are stored.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    admin_api_keys::table.count().get_result(conn)
}

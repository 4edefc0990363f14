//! Break-glass management from the command line: `admin-api-keys keys …` and `users …`, on
//! `DATABASE_URL` directly, for when no admin key is at hand.
//!
//! Policy: the CLI is an operator with full authority (whoever reaches the database can change
//! anything anyway) acting through the same service functions, and so the same rules, as the
//! HTTP API ([`crate::services::caller::Principal::Operator`]): every change is recorded in the
//! audit log as a `session` of the user named with `--as-user`, and the lock-out guard refuses
//! what it refuses over HTTP unless `--force`. The CLI has no caches; running servers learn of
//! a change through the tables' `NOTIFY` triggers on PostgreSQL (at once) and, on SQLite, when
//! their cached entries run out (`AUTH_CACHE_TTL_SECS`, 30 s by default). Output is a table,
//! or with `--json` the objects the API returns; no secret is ever printed.

pub mod healthcheck;

use std::io::Write;

use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::{DatabaseArgs, KeysCommand, ReadArgs, UsersCommand, WriteArgs};
use crate::db::{self, DbConnection, DbPool};
use crate::error::{ApiError, error_chain};
use crate::ids;
use crate::models::admin_api_key::{self, Cursor, KeyWithOwner, ListFilter, Order};
use crate::models::user::{self, User};
use crate::routes::admin_api_keys::json::{AdminApiKey, AdminApiKeyDeleted, DeletedObject};
use crate::routes::list::List;
use crate::routes::users::json::UserJson;
use crate::services::caller::Operator;
use crate::services::keys::{self, KeyUpdate, no_such_key};
use crate::services::users::{self, UserUpdate};
use crate::services::write_offline;

/// Rows read per query while listing.
const PAGE: i64 = 100;

/// Runs `admin-api-keys keys …`; the error is the one line to print.
pub fn keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::List(args) => {
            let mut conn = connect(&args.database)?;
            let keys = all_keys(&mut conn).map_err(|e| error_chain(&e))?;
            let shown: Vec<AdminApiKey> = keys
                .into_iter()
                .map(|(row, owner)| AdminApiKey::stored(row, owner, &mcp_presets()))
                .collect();
            if args.json {
                print_json(&List::new(shown, false, |key| &key.id))
            } else {
                print_key_table(&shown)
            }
        }
        KeysCommand::Show(args) => {
            let mut conn = connect(&args.read.database)?;
            let key = find_key(&mut conn, &args.id)?;
            print_key(&args.read, key)
        }
        KeysCommand::Disable(args) => set_key_enabled(&args, false),
        KeysCommand::Enable(args) => set_key_enabled(&args, true),
        KeysCommand::Delete(args) => {
            let mut conn = connect(&args.read.database)?;
            let operator = operator(&args);
            let now = SystemClock.now();
            write_offline(&mut conn, |conn| {
                keys::delete(conn, &operator, &args.id, now)
            })
            .map_err(refused)?;
            tracing::info!(key_id = %args.id, "deleted the key");
            if args.read.json {
                print_json(&AdminApiKeyDeleted {
                    id: args.id.clone(),
                    object: DeletedObject::Deleted,
                    deleted: true,
                })
            } else {
                print_line(&format!("deleted {}", args.id))
            }
        }
    }
}

/// Runs `admin-api-keys users …`; the error is the one line to print.
pub fn users(command: UsersCommand) -> Result<(), String> {
    match command {
        UsersCommand::List(args) => {
            let mut conn = connect(&args.database)?;
            let users = all_users(&mut conn).map_err(|e| error_chain(&e))?;
            let shown: Vec<UserJson> = users.into_iter().map(UserJson::from).collect();
            if args.json {
                print_json(&List::new(shown, false, |user| &user.id))
            } else {
                print_user_table(&shown)
            }
        }
        UsersCommand::Disable(args) => set_user_enabled(&args, false),
        UsersCommand::Enable(args) => set_user_enabled(&args, true),
    }
}

fn set_key_enabled(args: &WriteArgs, enabled: bool) -> Result<(), String> {
    let mut conn = connect(&args.read.database)?;
    let operator = operator(args);
    let now = SystemClock.now();
    let update = || KeyUpdate {
        enabled: Some(enabled),
        ..Default::default()
    };
    let key = write_offline(&mut conn, |conn| {
        keys::update(conn, &operator, &args.id, update(), now)
    })
    .map_err(refused)?;
    tracing::info!(key_id = %args.id, enabled, "changed the key");
    print_key(&args.read, key)
}

fn set_user_enabled(args: &WriteArgs, enabled: bool) -> Result<(), String> {
    let mut conn = connect(&args.read.database)?;
    let operator = operator(args);
    let now = SystemClock.now();
    let update = || UserUpdate {
        enabled: Some(enabled),
        ..Default::default()
    };
    let user = write_offline(&mut conn, |conn| {
        users::update(conn, &operator, &args.id, update(), now)
    })
    .map_err(refused)?;
    tracing::info!(user_id = %args.id, enabled, "changed the user");
    let shown = UserJson::from(user);
    if args.read.json {
        print_json(&shown)
    } else {
        print_user_table(std::slice::from_ref(&shown))
    }
}

fn operator(args: &WriteArgs) -> Operator {
    Operator {
        user_id: args.as_user.clone(),
        force: args.force,
    }
}

fn connect(
    database: &DatabaseArgs,
) -> Result<r2d2::PooledConnection<db::ConnectionManager>, String> {
    let options = db::PoolOptions {
        max_size: 1,
        ..database.pool_options()
    };
    let pool: DbPool = db::connect_and_migrate(
        &database.database_url,
        &options,
        db::QueryCounter::default(),
    )
    .map_err(|e| error_chain(&e))?;
    pool.get()
        .map_err(|e| format!("cannot reach the database: {e}"))
}

/// The one line for a refused or failed change: the API's message, with its code where it has
/// one (`last_admin_key`, `last_owner`, …) and the hint to `--force` past the guard.
fn refused(error: ApiError) -> String {
    match &error {
        ApiError::Conflict { code, .. } if *code == "last_admin_key" || *code == "last_owner" => {
            format!("{error} (`{code}`; --force overrides the guard)")
        }
        ApiError::Internal(_) | ApiError::Unavailable(_) => error_chain(&error),
        _ => error.to_string(),
    }
}

fn find_key(conn: &mut DbConnection, key_id: &str) -> Result<KeyWithOwner, String> {
    if !ids::plausible(key_id) {
        return Err(no_such_key(key_id).to_string());
    }
    admin_api_key::find(conn, key_id)
        .map_err(|e| error_chain(&e))?
        .ok_or_else(|| no_such_key(key_id).to_string())
}

fn all_keys(conn: &mut DbConnection) -> diesel::QueryResult<Vec<KeyWithOwner>> {
    let filter = ListFilter::default();
    let mut all = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = admin_api_key::list_page_keys(conn, after.as_ref(), Order::Asc, PAGE, &filter)?;
        let full = page.len() as i64 == PAGE;
        after = page.last().map(|(row, _)| Cursor {
            created_at: row.created_at,
            id: row.id.clone(),
        });
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

fn all_users(conn: &mut DbConnection) -> diesel::QueryResult<Vec<User>> {
    let mut all: Vec<User> = Vec::new();
    loop {
        let after = all.last().map(|user| (user.created_at, user.id.clone()));
        let page = user::list_page(conn, after.as_ref(), PAGE, &[])?;
        let full = page.len() as i64 == PAGE;
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

fn print_key(args: &ReadArgs, key: KeyWithOwner) -> Result<(), String> {
    let (row, owner) = key;
    let shown = AdminApiKey::stored(row, owner, &mcp_presets());
    if args.json {
        print_json(&shown)
    } else {
        print_key_table(std::slice::from_ref(&shown))
    }
}

/// The MCP presets keys are shown with: those of `MCP_PRESETS` as the server reads it (the
/// built-in ones when it is unset or malformed).
fn mcp_presets() -> crate::domain::McpPresets {
    std::env::var("MCP_PRESETS")
        .ok()
        .and_then(|raw| crate::domain::McpPresets::parse(&raw).ok())
        .unwrap_or_default()
}

fn print_key_table(keys: &[AdminApiKey]) -> Result<(), String> {
    let now = SystemClock.now();
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            let status = if !key.enabled {
                "disabled"
            } else if key.expires_at.is_some_and(|at| at <= now) {
                "expired"
            } else {
                "active"
            };
            vec![
                key.id.clone(),
                key.name.clone(),
                key.owner.id.clone(),
                status.to_owned(),
                key.scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                time(Some(key.created_at)),
                time(key.expires_at),
                time(key.last_used_at),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "NAME",
            "OWNER",
            "STATUS",
            "SCOPES",
            "CREATED",
            "EXPIRES",
            "LAST USED",
        ],
        &rows,
    )
}

fn print_user_table(users: &[UserJson]) -> Result<(), String> {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|user| {
            vec![
                user.id.clone(),
                user.name.clone(),
                user.email.clone().unwrap_or_else(|| "-".to_owned()),
                user.role.as_str().to_owned(),
                if user.enabled { "enabled" } else { "disabled" }.to_owned(),
                time(Some(user.added_at)),
            ]
        })
        .collect();
    print_table(&["ID", "NAME", "EMAIL", "ROLE", "STATUS", "ADDED"], &rows)
}

/// Columns padded to their widest cell, two spaces apart.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    print_raw(&out)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC, or `-`.
fn time(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return "-".to_owned();
    };
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn print_json(value: &impl Serialize) -> Result<(), String> {
    let json = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    print_line(&json)
}

fn print_line(line: &str) -> Result<(), String> {
    print_raw(&format!("{line}\n"))
}

fn print_raw(text: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::time;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(time(None), "-");
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(time(Some(1_763_891_200)), "2025-11-23 09:46:40");
        assert_eq!(time(Some(951_782_400)), "2000-02-29 00:00:00");
    }
}

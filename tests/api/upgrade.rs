//! Upgrading a database made by an earlier version: rows written before a migration come out
//! of it meaning what they meant, on both backends.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::helpers::{Backend, TestDatabase};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Runs every migration of `source` whose version sorts before `version`.
fn migrate_before<DB: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<DB>,
    source: EmbeddedMigrations,
    version: &str,
) {
    // Versions compare by their digits (diesel drops the dashes of `2026-12-07-100000`).
    let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
    let version = digits(version);
    let mut all = MigrationSource::<DB>::migrations(&source).unwrap();
    // Makes diesel's bookkeeping table.
    conn.pending_migrations(source).unwrap();
    all.sort_by_key(|m| digits(&m.name().version().to_string()));
    let mut ran = 0;
    for migration in all {
        if digits(&migration.name().version().to_string()) >= version {
            break;
        }
        conn.run_migration(&*migration).unwrap();
        ran += 1;
    }
    assert!(ran > 0, "no migration sorts before {version}");
}

/// Members and keys as the version before permission ceilings stored them.
const BEFORE_CEILINGS: &str = "
    INSERT INTO users (id, name, email, role, created_at, enabled) VALUES
        ('user_owner', 'Owner', 'o@example.com', 'owner', 1, TRUE),
        ('user_reader', 'Reader', 'r@example.com', 'reader', 2, TRUE),
        ('user_plain', 'Plain', 'p@example.com', 'reader', 3, TRUE);
    INSERT INTO admin_api_keys
        (id, name, key_hash, redacted_value, owner_id, created_at, scopes, enabled, permissions)
    VALUES
        ('key_o', 'o', 'h1', 'r', 'user_owner', 1, 'users.read', TRUE, '*'),
        ('key_r1', 'r1', 'h2', 'r', 'user_reader', 2, 'users.read', TRUE, 'billing:* ops'),
        ('key_r2', 'r2', 'h3', 'r', 'user_reader', 2, 'users.read', TRUE, 'ops reports:read'),
        ('key_p', 'p', 'h4', 'r', 'user_plain', 3, 'users.read', TRUE, '');
";

#[derive(diesel::QueryableByName, Debug)]
struct Ceiling {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    permissions: String,
}

const CEILINGS_QUERY: &str = "SELECT id, permissions FROM users ORDER BY id";

/// The ceilings after the upgrade, each read as a set (sorted, without repeats).
fn ceilings(rows: Vec<Ceiling>) -> Vec<(String, String)> {
    rows.into_iter()
        .map(|row| {
            let set = admin_api_keys::domain::Permissions::from_db(&row.permissions);
            (row.id, set.to_db())
        })
        .collect()
}

fn expected() -> Vec<(String, String)> {
    [
        ("user_owner", "*"),
        ("user_plain", ""),
        ("user_reader", "billing:* ops reports:read"),
    ]
    .into_iter()
    .map(|(id, p)| (id.to_owned(), p.to_owned()))
    .collect()
}

const CEILINGS: &str = "2026-12-07-100000";

#[test]
fn the_upgrade_gives_owners_every_permission_and_readers_what_their_keys_held_on_sqlite() {
    let database = TestDatabase::create(Backend::Sqlite).unwrap();
    admin_api_keys::db::sqlite_multi_thread_mode();
    let mut conn = SqliteConnection::establish(&database.url()).unwrap();
    migrate_before(&mut conn, SQLITE, CEILINGS);
    conn.batch_execute(BEFORE_CEILINGS).unwrap();
    conn.run_pending_migrations(SQLITE).unwrap();
    assert_eq!(
        ceilings(diesel::sql_query(CEILINGS_QUERY).load(&mut conn).unwrap()),
        expected()
    );
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
fn the_upgrade_gives_owners_every_permission_and_readers_what_their_keys_held_on_postgres() {
    let Some(database) = TestDatabase::create(Backend::Postgres) else {
        return;
    };
    let mut conn = PgConnection::establish(&database.url()).unwrap();
    migrate_before(&mut conn, POSTGRES, CEILINGS);
    conn.batch_execute(BEFORE_CEILINGS).unwrap();
    conn.run_pending_migrations(POSTGRES).unwrap();
    assert_eq!(
        ceilings(diesel::sql_query(CEILINGS_QUERY).load(&mut conn).unwrap()),
        expected()
    );
}

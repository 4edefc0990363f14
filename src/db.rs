//! Storage: one Diesel connection type over PostgreSQL and SQLite, its pool, migrations and the
//! bridge from async handlers to blocking Diesel calls.
//!
//! Policy: the backend is chosen by the URL scheme (`postgres://` or `sqlite://`). Connection
//! errors are reported as the backend gave them (the derived `MultiConnection::establish` tries
//! each backend and hides the real cause). Diesel and `pool.get()` only ever run inside
//! [`run_blocking`], never on an async worker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ApiError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises migrations when several replicas start at once on one PostgreSQL database.
const MIGRATION_LOCK_ID: i64 = 0x6164_6d69_6e6b_6579; // "admink ey"

/// A connection to either backend; Diesel derives the query plumbing for both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// The shared connection pool.
pub type DbPool = r2d2::Pool<ConnectionManager>;

/// Which database a `DATABASE_URL` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A libpq connection string (`postgres://` or `postgresql://`).
    Postgres(String),
    /// A SQLite database file path.
    Sqlite(String),
}

/// A database URL that cannot be used, or a database that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error(
        "unsupported DATABASE_URL scheme {0:?}: use sqlite://PATH (for example sqlite://admin-api-keys.db) or postgres://USER@HOST/DB"
    )]
    UnsupportedScheme(String),
    #[error(
        "in-memory SQLite cannot be shared by a connection pool: give DATABASE_URL a file path, e.g. sqlite://admin-api-keys.db"
    )]
    InMemorySqlite,
    #[error("cannot connect to the database")]
    Connect(#[source] ConnectionError),
    #[error("cannot build the connection pool")]
    Pool(#[source] r2d2::Error),
    #[error("cannot run database migrations: {0}")]
    Migrate(String),
}

impl DatabaseTarget {
    /// Parses a `DATABASE_URL`. Only the scheme is ever echoed back: the rest may hold a password.
    pub fn parse(url: &str) -> Result<Self, DbSetupError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path == ":memory:" || path.contains("mode=memory") {
                return Err(DbSetupError::InMemorySqlite);
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        Err(DbSetupError::UnsupportedScheme(scheme.to_owned()))
    }

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        match self {
            Self::Postgres(url) => {
                init_libpq_tls();
                let mut conn = PgConnection::establish(url)?;
                // Every statement here is a short indexed lookup whose best plan does not
                // depend on its parameters. Left to choose, PostgreSQL re-plans the keyset
                // page query on every execution once a table is large, because the generic
                // plan's cost (with an unknown LIMIT) looks high: about 0.1 ms per page of
                // pure planning at 1M keys (bench/RESULTS.md).
                conn.batch_execute("SET plan_cache_mode = force_generic_plan")
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Pg(conn))
            }
            Self::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(|e| match e {
                    ConnectionError::BadConnection(msg) => {
                        ConnectionError::BadConnection(format!("SQLite file {path:?}: {msg}"))
                    }
                    other => other,
                })?;
                // The busy timeout makes a writer wait for the lock instead of failing at once;
                // it comes first because switching to WAL needs the lock too, and connections
                // opened at the same moment (the pool fills in the background) would otherwise
                // fail with "database is locked". WAL lets readers run beside the one writer.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// Counts the statements every pooled connection runs, so tests (and operators) can see how
/// many database round trips a request costs.
#[derive(Clone, Debug, Default)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    /// Statements started so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Initialises OpenSSL (which libpq uses for TLS) without its exit-time cleanup. Otherwise
/// `OPENSSL_cleanup` runs from `exit()` while a pool thread may still be in a TLS handshake
/// (r2d2 opens connections in the background), and the process crashes on its way out: seen
/// as `bootstrap` exiting with SIGSEGV after printing its key, about 1 run in 20.
pub fn init_libpq_tls() {
    openssl_sys::init();
}

/// An r2d2 manager that connects to the backend the URL names and keeps its real errors.
#[derive(Debug)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    queries: QueryCounter,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        let mut conn = self.target.connect()?;
        let queries = Arc::clone(&self.queries.0);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                queries.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.ping()
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects once (so a bad URL or an unreachable database fails fast with its real cause),
/// applies pending migrations on that connection, then builds the pool, whose statements
/// `queries` counts.
///
/// Connections are not pinged on checkout: that would double the round trips of every
/// request. A connection that died is found by the query that uses it (a 503, see
/// `ApiError`) and then discarded by `has_broken`.
pub fn connect_and_migrate(
    url: &str,
    options: &PoolOptions,
    queries: QueryCounter,
) -> Result<DbPool, DbSetupError> {
    let target = DatabaseTarget::parse(url)?;
    let mut first = target.connect().map_err(DbSetupError::Connect)?;
    run_migrations(&mut first)?;
    drop(first);
    r2d2::Pool::builder()
        .max_size(options.max_size)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .connection_timeout(options.acquire_timeout)
        .build(ConnectionManager { target, queries })
        .map_err(DbSetupError::Pool)
}

/// Applies the pending migrations of the connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbSetupError> {
    let migrate =
        |e: Box<dyn std::error::Error + Send + Sync>| DbSetupError::Migrate(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => {
            conn.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migrate)?;
        }
        DbConnection::Pg(conn) => {
            advisory(conn, "SELECT pg_advisory_lock($1)")?;
            let applied = conn
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(drop)
                .map_err(migrate);
            advisory(conn, "SELECT pg_advisory_unlock($1)")?;
            applied?;
        }
    }
    Ok(())
}

fn advisory(conn: &mut PgConnection, sql: &str) -> Result<(), DbSetupError> {
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_ID)
        .execute(conn)
        .map(drop)
        .map_err(|e| DbSetupError::Migrate(e.to_string()))
}

/// Runs `f` in a transaction that is a writer from its first statement.
///
/// SQLite starts transactions DEFERRED: one that reads before it writes cannot wait for the
/// write lock when another connection commits in between, and fails at once with "database
/// is locked" (seen as 500s under concurrent creates). A no-op UPDATE as the first statement
/// takes the write lock up front, where the busy timeout applies. PostgreSQL needs nothing.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let DbConnection::Sqlite(sqlite) = conn {
            sqlite.batch_execute("UPDATE users SET id = id WHERE 0")?;
        }
        f(conn)
    })
}

/// Runs `f` with a pooled connection on the blocking thread pool, inside the caller's span.
pub async fn run_blocking<F, T>(pool: &DbPool, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _entered = span.enter();
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

//! Storage: one Diesel connection type over PostgreSQL and SQLite, its pool, migrations and the
//! bridge from async handlers to blocking Diesel calls.
//!
//! Policy: the backend is chosen by the URL scheme (`postgres://` or `sqlite://`). Connection
//! errors are reported as the backend gave them (the derived `MultiConnection::establish` tries
//! each backend and hides the real cause). Diesel and `pool.get()` only ever run inside
//! [`run_blocking`] or the [`Writer`], never on an async worker thread.
//!
//! Writes go through one [`Writer`]. On SQLite, which allows one writer at a time, that is a
//! single connection on a thread of its own fed by a queue: concurrent writes wait in order
//! instead of sleeping in SQLite's busy handler, and the writes queued behind one another are
//! committed together (group commit: one transaction, one fsync, each write in its own
//! savepoint so each caller still gets its own result or error). SQLite runs with
//! `synchronous = FULL`, so a write that was answered survives a power cut. On PostgreSQL
//! writes run on the pool, each in its own transaction.
//!
//! Outages (PostgreSQL): while the database is away every request is a 503, within
//! [`UNREACHABLE_WAIT`] once the pool has no connection left and cannot open one. The pool
//! retries its connections every [`RECONNECT_INTERVAL`] without growing the interval, a
//! connection attempt gives up after [`CONNECT_TIMEOUT_SECS`] (unless the URL sets
//! `connect_timeout`), a connection whose query failed is dropped if it does not answer a
//! ping, and a pooled connection is pinged before use when it has been idle for
//! [`CHECK_IDLE_AFTER`] or a connection has failed since it was last used, so dead
//! connections left from before the outage are discarded instead of failing requests. The
//! service answers again within a fraction of a second of the database accepting connections
//! (`tests/api/outage.rs`).
//!
//! The writer reports whether it is making progress ([`Writer::stalled`]): readiness fails
//! when writes have waited longer than `writer_stall` without any write finishing.

use std::borrow::Cow;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use r2d2::ManageConnection;
use tokio::sync::{mpsc, oneshot};

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ApiError;
use crate::metrics;

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

/// A connection checked out of the pool.
pub type PooledDb = r2d2::PooledConnection<ConnectionManager>;

/// How often the pool retries a connection while the database is away. r2d2 retries with a
/// growing delay capped at half its `connection_timeout`, which it also uses as the wait for
/// a free connection; the pool is built with twice this as that timeout (so the retries never
/// back off further than this), and [`DbPool::get`] waits the configured acquire timeout.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(250);
/// How long libpq may take to open a connection, when the URL does not say
/// (`connect_timeout`): a database that accepts TCP but never answers must not hold the
/// pool's connecting threads (or the listener) for the kernel's minutes.
pub const CONNECT_TIMEOUT_SECS: u32 = 2;
/// A pooled PostgreSQL connection idle this long is pinged before use.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);
/// How long a request waits for a connection while the database is unreachable.
pub const UNREACHABLE_WAIT: Duration = Duration::from_millis(500);

/// The shared connection pool: an r2d2 pool (its methods are reachable through `Deref`)
/// whose [`DbPool::get`] waits the configured acquire timeout and never hands out a
/// connection that is known or likely to be dead.
#[derive(Clone, Debug)]
pub struct DbPool {
    inner: r2d2::Pool<ConnectionManager>,
    acquire_timeout: Duration,
    writer_stall: Duration,
    /// Bumped whenever a connection is found broken: every connection in use before is then
    /// pinged before its next use.
    failures: Arc<AtomicU64>,
    reach: Arc<Reachability>,
}

/// Whether the database was reachable at last news: the last connection the pool opened
/// against the last time one failed to open or was found dead.
#[derive(Debug)]
struct Reachability {
    epoch: Instant,
    /// Nanoseconds after `epoch`, plus one (zero: never).
    opened: AtomicU64,
    lost: AtomicU64,
}

impl Reachability {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            opened: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        })
    }

    fn stamp(&self, at: &AtomicU64) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        at.fetch_max(nanos + 1, Ordering::AcqRel);
    }

    fn unreachable(&self) -> bool {
        self.lost.load(Ordering::Acquire) > self.opened.load(Ordering::Acquire)
    }
}

/// Tells [`Reachability`] of each connection the pool opens.
#[derive(Debug)]
struct Opened(Arc<Reachability>);

impl r2d2::HandleEvent for Opened {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.stamp(&self.0.opened);
    }
}

/// What the pool remembers about a connection between checkouts (an r2d2 extension).
#[derive(Clone, Copy)]
struct Checked {
    at: Instant,
    failures: u64,
}

impl Deref for DbPool {
    type Target = r2d2::Pool<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DbPool {
    /// A connection, waiting up to the acquire timeout for one (then `Err`, a 503). A
    /// PostgreSQL connection that has been idle for [`CHECK_IDLE_AFTER`], or was last used
    /// before another connection failed, is pinged first and discarded if it does not answer.
    ///
    /// While the database is unreachable (the pool has no connection left and the last
    /// attempt to open one failed) the wait is at most [`UNREACHABLE_WAIT`]: enough for the
    /// pool's next attempt, so a request that arrives as the database returns still gets
    /// through, but an outage answers 503 at once instead of holding every request (and
    /// every blocking thread) for the whole acquire timeout.
    pub fn get(&self) -> Result<PooledDb, r2d2::Error> {
        let started = Instant::now();
        let mut deadline = started + self.acquire_timeout;
        if self.reach.unreachable() && self.inner.state().connections == 0 {
            deadline = deadline.min(started + UNREACHABLE_WAIT);
        }
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut conn = self
                .inner
                .get_timeout(wait)
                .inspect_err(|_| metrics::db_error(metrics::DbError::PoolTimeout))?;
            let failures = self.failures.load(Ordering::Acquire);
            let now = Instant::now();
            let last = r2d2::PooledConnection::extensions_mut(&mut conn)
                .insert(Checked { at: now, failures });
            let suspect = last.is_some_and(|last| {
                last.failures != failures || now.duration_since(last.at) >= CHECK_IDLE_AFTER
            });
            if !suspect || !matches!(*conn, DbConnection::Pg(_)) || answers(&mut conn) {
                metrics::pool_wait(started.elapsed());
                return Ok(conn);
            }
            tracing::warn!("discarded a pooled database connection that no longer answers");
            self.discard(&mut conn);
        }
    }

    /// Marks `conn` broken so the pool drops it when it is returned, and has every other
    /// connection checked before its next use.
    pub fn discard(&self, conn: &mut DbConnection) {
        use diesel::connection::TransactionManager;
        <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .set_in_error();
        self.failures.fetch_add(1, Ordering::AcqRel);
        self.reach.stamp(&self.reach.lost);
    }

    /// How long writes may wait without any finishing before readiness fails.
    pub fn writer_stall(&self) -> Duration {
        self.writer_stall
    }
}

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
                let mut conn = PgConnection::establish(&with_connect_timeout(url))?;
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
                sqlite_multi_thread_mode();
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
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// Puts SQLite in its multi-thread mode before this process opens its first connection; call it
/// before opening a SQLite connection by any other way than [`DatabaseTarget`]'s.
/// The bundled library is built serialized: every call on a connection (each column of each
/// row read) takes and releases a mutex, in case two threads share the connection. Ours never
/// do: a connection is owned by the writer thread or lent by the pool to one thread at a time
/// (Diesel's connections are not `Sync`). Multi-thread mode drops those mutexes (about 15k
/// instructions of a 20-key list page, one lock per value read).
pub fn sqlite_multi_thread_mode() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` may only run before SQLite is initialised and while no
        // other thread calls into SQLite. Every connection this process opens is opened just
        // after this call (by `DatabaseTarget::connect` or after calling this), and `call_once` holds back every other opener until it returns, so
        // nothing else is in SQLite meanwhile. Once a connection has been opened (initialised)
        // the call does nothing and returns SQLITE_MISUSE; serialized mode then stays, which
        // is only slower.
        let status =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD) };
        if status != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(status, "SQLite stays in serialized mode");
        }
    });
}

thread_local! {
    /// Set while this thread checks a pooled connection, so the check is not counted.
    static CHECKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `conn` answers a ping (not counted by [`QueryCounter`]).
fn answers(conn: &mut DbConnection) -> bool {
    CHECKING.set(true);
    let answered = conn.ping().is_ok();
    CHECKING.set(false);
    answered
}

/// Counts the statements every pooled connection runs, so tests (and operators) can see how
/// many database round trips a request costs. The pool's own checks of its connections
/// ([`DbPool::get`]) are not counted: they are not the request's statements.
#[derive(Clone, Debug, Default)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    /// Statements started so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `url` (a `postgres://` URL) with `connect_timeout` set to [`CONNECT_TIMEOUT_SECS`] unless
/// it sets one itself or `PGCONNECT_TIMEOUT` does.
pub fn with_connect_timeout(url: &str) -> Cow<'_, str> {
    if url.contains("connect_timeout=") || std::env::var_os("PGCONNECT_TIMEOUT").is_some() {
        return Cow::Borrowed(url);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Cow::Owned(format!(
        "{url}{separator}connect_timeout={CONNECT_TIMEOUT_SECS}"
    ))
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
            if let InstrumentationEvent::StartQuery { .. } = event
                && !CHECKING.get()
            {
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
    /// How long writes may wait without any write finishing before `/readyz` reports the
    /// writer stuck.
    pub writer_stall: Duration,
}

/// The default of [`PoolOptions::writer_stall`], in seconds: longer than a write waits for
/// a connection or (SQLite) for the file lock, so only a writer that is truly stuck trips it.
pub const DEFAULT_WRITER_STALL_SECS: u64 = 15;

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            writer_stall: Duration::from_secs(DEFAULT_WRITER_STALL_SECS),
        }
    }
}

/// Connects once (so a bad URL or an unreachable database fails fast with its real cause),
/// applies pending migrations on that connection, then builds the pool, whose statements
/// `queries` counts.
///
/// Connections are not pinged on every checkout: that would double the round trips of every
/// request. Only a connection idle for a while, or one in use before another failed, is
/// pinged (see [`DbPool::get`]); a connection that died in use is found by the query that
/// uses it (a 503, see `ApiError`) and then discarded by `has_broken`.
pub fn connect_and_migrate(
    url: &str,
    options: &PoolOptions,
    queries: QueryCounter,
) -> Result<DbPool, DbSetupError> {
    let target = DatabaseTarget::parse(url)?;
    // A relative SQLite path is relative to the working directory: say which file this is
    // (and when it is new), so a command run from elsewhere cannot silently use another one.
    let new_sqlite_file = match &target {
        DatabaseTarget::Sqlite(path) => Some(sqlite_file(path)).filter(|file| !file.exists()),
        DatabaseTarget::Postgres(_) => None,
    };
    let mut first = target.connect().map_err(DbSetupError::Connect)?;
    if let DatabaseTarget::Sqlite(path) = &target {
        let file = sqlite_file(path);
        let shown = std::path::absolute(&file).unwrap_or(file);
        if new_sqlite_file.is_some() {
            tracing::info!(path = %shown.display(), "created a new database at {}", shown.display());
        } else {
            tracing::info!(path = %shown.display(), "using the database at {}", shown.display());
        }
    }
    let applied = run_migrations(&mut first)?;
    drop(first);
    if applied.is_empty() {
        tracing::info!("database migrations: none pending");
    } else {
        tracing::info!(applied = %applied.join(", "), "database migrations applied");
    }
    build_pool(target, options, queries)
}

/// The file of a SQLite `DATABASE_URL` path (without `?options`).
fn sqlite_file(path: &str) -> std::path::PathBuf {
    let path = path.split_once('?').map_or(path, |(file, _)| file);
    std::path::PathBuf::from(path.strip_prefix("file:").unwrap_or(path))
}

fn build_pool(
    target: DatabaseTarget,
    options: &PoolOptions,
    queries: QueryCounter,
) -> Result<DbPool, DbSetupError> {
    // `build_unchecked`: the database was just reached, and `build` would wait for the first
    // connection only as long as the short timeout below.
    let reach = Reachability::new();
    let inner = r2d2::Pool::builder()
        .max_size(options.max_size)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .connection_timeout(RECONNECT_INTERVAL * 2)
        .error_handler(Box::new(ConnectErrors {
            reach: Arc::clone(&reach),
            last: std::sync::Mutex::default(),
        }))
        .event_handler(Box::new(Opened(Arc::clone(&reach))))
        .build_unchecked(ConnectionManager { target, queries });
    Ok(DbPool {
        inner,
        acquire_timeout: options.acquire_timeout,
        writer_stall: options.writer_stall,
        failures: Arc::default(),
        reach,
    })
}

/// Notes the pool's failures to open a connection (see [`Reachability`]) and logs them: the
/// first, then at most one every [`CONNECT_ERROR_LOG_INTERVAL`] (with the number since), not
/// every retry of every slot.
#[derive(Debug)]
struct ConnectErrors {
    reach: Arc<Reachability>,
    last: std::sync::Mutex<Option<(Instant, u64)>>,
}

/// How often the pool logs that it cannot connect.
const CONNECT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl r2d2::HandleError<ConnectionError> for ConnectErrors {
    fn handle_error(&self, error: ConnectionError) {
        self.reach.stamp(&self.reach.lost);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failures = match *last {
            Some((at, failures)) if at.elapsed() < CONNECT_ERROR_LOG_INTERVAL => {
                *last = Some((at, failures + 1));
                return;
            }
            Some((_, failures)) => failures + 1,
            None => 1,
        };
        *last = Some((Instant::now(), 0));
        drop(last);
        tracing::error!(error = %crate::error::error_chain(&error), failures, "cannot open a database connection; retrying");
    }
}

/// Applies the pending migrations of the connection's backend; returns the names of those it
/// applied, in order.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, DbSetupError> {
    let migrate =
        |e: Box<dyn std::error::Error + Send + Sync>| DbSetupError::Migrate(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => apply_pending(conn, SQLITE_MIGRATIONS).map_err(migrate),
        DbConnection::Pg(conn) => {
            advisory(conn, "SELECT pg_advisory_lock($1)")?;
            let applied = apply_pending(conn, POSTGRES_MIGRATIONS).map_err(migrate);
            advisory(conn, "SELECT pg_advisory_unlock($1)")?;
            applied
        }
    }
}

/// `run_pending_migrations`, keeping the names (`run_pending_migrations` returns only versions).
fn apply_pending<DB: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<DB>,
    source: EmbeddedMigrations,
) -> diesel::migration::Result<Vec<String>> {
    let pending = conn.pending_migrations(source)?;
    for migration in &pending {
        conn.run_migration(&**migration)?;
    }
    Ok(pending.iter().map(|m| m.name().to_string()).collect())
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
        let result = f(&mut conn);
        // A connection whose server went away fails every later query ("no connection to
        // the server") without Diesel calling it broken, so r2d2 would keep handing it out.
        // After a failure that may be the connection's, check it, and drop it if it is dead;
        // the others were opened before it and may be dead too.
        if let Err(ApiError::Unavailable(_) | ApiError::Internal(_)) = &result
            && (R2D2Connection::is_broken(&mut *conn) || !answers(&mut conn))
        {
            pool.discard(&mut conn);
        }
        count_failure(&result);
        result
    })
    .await?
}

/// Counts a database call that failed for a reason of the database's (`metrics`); the errors
/// a client causes (not found, conflicts) are answers, not failures.
fn count_failure<T>(result: &Result<T, ApiError>) {
    match result {
        Err(ApiError::Unavailable(_)) => metrics::db_error(metrics::DbError::Unavailable),
        Err(ApiError::Internal(_)) => metrics::db_error(metrics::DbError::Internal),
        _ => {}
    }
}

/// Where writes go; see the module docs.
#[derive(Clone, Debug)]
pub struct Writer {
    route: Route,
    progress: Arc<Progress>,
}

#[derive(Clone, Debug)]
enum Route {
    /// PostgreSQL: any pooled connection, one transaction per write.
    Pool(DbPool),
    /// SQLite: the queue of the one write connection.
    Queue(mpsc::Sender<Queued>),
}

/// Whether the writer is getting anywhere: how many writes are waiting or running, and when
/// one last finished (or, if none was waiting, when the first of those arrived). A writer
/// that is busy but healthy keeps finishing writes, so only one that has finished nothing
/// for the whole bound while writes wait is stalled.
#[derive(Debug)]
struct Progress {
    epoch: Instant,
    pending: AtomicUsize,
    /// Nanoseconds after `epoch`.
    last: AtomicU64,
    stall_after: Duration,
}

impl Progress {
    fn new(stall_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            pending: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            stall_after,
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A write finished (or a batch moved on).
    fn advanced(&self) {
        self.last.store(self.now(), Ordering::Release);
    }

    /// A write arrives; it counts as pending until the guard is dropped.
    fn enter(self: &Arc<Self>) -> InFlight {
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            // An idle writer is not late: the clock starts when work arrives.
            self.advanced();
        }
        InFlight(Arc::clone(self))
    }

    fn stalled(&self) -> Option<(Duration, usize)> {
        let pending = self.pending.load(Ordering::Acquire);
        let idle =
            Duration::from_nanos(self.now().saturating_sub(self.last.load(Ordering::Acquire)));
        (pending > 0 && idle > self.stall_after).then_some((idle, pending))
    }
}

/// One write waiting or running; finished when dropped (whatever happened to it).
struct InFlight(Arc<Progress>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.advanced();
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why `/readyz` considers the writer not ready.
#[derive(Debug, thiserror::Error)]
pub enum WriterStalled {
    #[error("the database writer has stopped")]
    Stopped,
    #[error("no database write has finished for {idle:?} while {pending} waited")]
    Stuck { idle: Duration, pending: usize },
}

/// How a write is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// In a transaction of its own (on SQLite, a savepoint in the batch's transaction).
    Transaction,
    /// One statement, atomic by itself: no transaction around it.
    Statement,
}

/// A write waiting for the SQLite writer.
pub struct Queued {
    job: Job,
    /// Runs outside the batch's transaction: a single statement, atomic by itself.
    alone: bool,
}

/// A write for the SQLite writer thread: runs inside the batch's transaction and returns what
/// to do once the batch has committed (or failed to).
pub type Job = Box<dyn FnOnce(&mut DbConnection) -> Done + Send>;
type Done = Box<dyn FnOnce(Result<(), &ApiError>) + Send>;

/// Most writes committed together.
const MAX_BATCH: usize = 64;
/// Writes waiting for the SQLite writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;

impl Writer {
    /// The writer for `url`'s backend: the pool's on PostgreSQL; on SQLite a new connection
    /// (counted by `queries`) on a thread of its own, which ends when the last `Writer` clone
    /// is dropped.
    pub fn start(url: &str, pool: &DbPool, queries: QueryCounter) -> Result<Self, DbSetupError> {
        let progress = Progress::new(pool.writer_stall());
        let route = match DatabaseTarget::parse(url)? {
            DatabaseTarget::Postgres(_) => Route::Pool(pool.clone()),
            target @ DatabaseTarget::Sqlite(_) => {
                let manager = ConnectionManager { target, queries };
                let conn = manager.connect().map_err(DbSetupError::Connect)?;
                let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
                let advancing = Arc::clone(&progress);
                std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || write_loop(manager, conn, receiver, &advancing))
                    .map_err(|e| DbSetupError::Migrate(format!("cannot start the writer: {e}")))?;
                Route::Queue(sender)
            }
        };
        Ok(Self { route, progress })
    }

    /// `Err` when the writer cannot take writes (its thread is gone), or writes have been
    /// waiting for longer than the pool's `writer_stall` without a single write finishing.
    pub fn stalled(&self) -> Result<(), WriterStalled> {
        if let Route::Queue(queue) = &self.route
            && queue.is_closed()
        {
            return Err(WriterStalled::Stopped);
        }
        match self.progress.stalled() {
            Some((idle, pending)) => Err(WriterStalled::Stuck { idle, pending }),
            None => Ok(()),
        }
    }

    /// Runs `change` in a transaction (rolled back if it returns `Err`), or on its own for
    /// [`WriteKind::Statement`], then `after_commit` on its result once the commit has
    /// succeeded, before the caller is answered. Both run on the writing thread, so they
    /// complete even if the caller goes away.
    pub async fn run<T, F, A>(
        &self,
        kind: WriteKind,
        change: F,
        after_commit: A,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        let alone = kind == WriteKind::Statement;
        let in_flight = self.progress.enter();
        match &self.route {
            Route::Pool(pool) => {
                run_blocking(pool, move |conn| {
                    let _in_flight = in_flight;
                    let value = if alone {
                        change(conn)?
                    } else {
                        write_transaction(conn, change)?
                    };
                    after_commit(&value);
                    Ok(value)
                })
                .await
            }
            Route::Queue(queue) => {
                let (answer, answered) = oneshot::channel();
                let job: Job = Box::new(move |conn| {
                    // A panic is an error too, so it cannot leave a savepoint open or stop the
                    // writer.
                    let guarded = |conn: &mut DbConnection| {
                        std::panic::catch_unwind(AssertUnwindSafe(|| change(conn))).unwrap_or_else(
                            |_| Err(ApiError::Internal("a database write panicked".into())),
                        )
                    };
                    // In a batch, a savepoint: a failed write rolls back alone.
                    let result = if alone {
                        guarded(conn)
                    } else {
                        conn.transaction(guarded)
                    };
                    Box::new(move |committed: Result<(), &ApiError>| {
                        let _in_flight = in_flight;
                        let result = match (result, committed) {
                            (Ok(value), Ok(())) => {
                                after_commit(&value);
                                Ok(value)
                            }
                            (Ok(_), Err(e)) => Err(commit_failed(e)),
                            (Err(e), _) => Err(e),
                        };
                        let _ = answer.send(result);
                    })
                });
                queue
                    .send(Queued { job, alone })
                    .await
                    .map_err(|_| ApiError::Unavailable("the database writer has stopped".into()))?;
                let result = answered.await.map_err(|_| {
                    ApiError::Unavailable(
                        "the database writer could not start a transaction".into(),
                    )
                })?;
                count_failure(&result);
                result
            }
        }
    }
}

fn commit_failed(error: &ApiError) -> ApiError {
    let cause = crate::error::error_chain(error);
    match error {
        ApiError::Unavailable(_) => ApiError::Unavailable(cause.into()),
        _ => ApiError::Internal(format!("the batch did not commit: {cause}").into()),
    }
}

/// The SQLite writer thread: takes what is queued (up to [`MAX_BATCH`]), runs it in one
/// transaction, commits, then answers each caller. Single statements run on their own first.
///
/// After each write the transaction depth must be what it was before: a write that panicked
/// inside a nested transaction leaves a savepoint open (Diesel does not roll back on unwind),
/// and SQLite itself rolls the whole transaction back on some errors (disk full, I/O). Either
/// way the batch is abandoned: every write that ran in it is answered with an error (none of
/// them is committed), the ones not yet run are dropped (their callers get a 503, so a retry
/// is safe), and the writer starts again on a new connection.
fn write_loop(
    manager: ConnectionManager,
    mut conn: DbConnection,
    mut queue: mpsc::Receiver<Queued>,
    progress: &Progress,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        let (alone, together): (Vec<_>, Vec<_>) = batch.into_iter().partition(|q| q.alone);
        let mut done = Vec::with_capacity(together.len());
        let mut broken = false;
        for queued in alone {
            done.push((queued.job)(&mut conn));
            progress.advanced();
            if transaction_depth(&mut conn) != Some(0) {
                broken = true;
                break;
            }
        }
        let mut together = together.into_iter();
        let committed = if broken || together.len() == 0 {
            Ok(())
        } else {
            write_transaction(&mut conn, |conn| {
                let expected = transaction_depth(conn);
                for queued in together.by_ref() {
                    done.push((queued.job)(conn));
                    progress.advanced();
                    if transaction_depth(conn) != expected {
                        broken = true;
                        return Err(ApiError::Internal(
                            "a write left the batch's transaction in an unknown state".into(),
                        ));
                    }
                }
                Ok::<_, ApiError>(())
            })
        };
        if let Err(e) = &committed {
            tracing::error!(error = %crate::error::error_chain(e), writes = done.len(), "a batch of writes did not commit");
        }
        let abandoned = ApiError::Internal("the batch of writes was abandoned".into());
        // Single statements before a break did commit; they are answered with an error too,
        // which only makes their caller retry (a usage flush is idempotent).
        for finish in done {
            let outcome = match &committed {
                _ if broken => Err(&abandoned),
                Ok(()) => Ok(()),
                Err(e) => Err(e),
            };
            // An invalidation that panics must not take the writer down with it.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| finish(outcome)));
        }
        if broken {
            conn = reopen(&manager, conn);
        }
    }
}

/// How deep in transactions Diesel believes `conn` is; `None` if it cannot tell.
fn transaction_depth(conn: &mut DbConnection) -> Option<u32> {
    use diesel::connection::{Connection, TransactionManager};
    <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
}

/// Rolls back whatever is open on `old` and replaces it with a new connection, retrying
/// until the database answers.
fn reopen(manager: &ConnectionManager, mut old: DbConnection) -> DbConnection {
    let _ = old.batch_execute("ROLLBACK");
    drop(old);
    let mut backoff = Duration::from_millis(50);
    loop {
        match manager.connect() {
            Ok(conn) => return conn,
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the SQLite write connection; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_user(conn: &mut DbConnection, id: &str) -> diesel::QueryResult<usize> {
        diesel::sql_query(
            "INSERT INTO users (id, name, role, created_at) VALUES (?, 'x', 'owner', 0)",
        )
        .bind::<diesel::sql_types::Text, _>(id)
        .execute(conn)
    }

    fn users(pool: &DbPool) -> i64 {
        use diesel::QueryDsl;
        let mut conn = pool.get().unwrap();
        crate::schema::users::table
            .count()
            .get_result(&mut conn)
            .unwrap()
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_set_one() {
        if std::env::var_os("PGCONNECT_TIMEOUT").is_some() {
            return;
        }
        let cases = [
            ("postgres://u@h/db", "postgres://u@h/db?connect_timeout=2"),
            (
                "postgres://u@h/db?sslmode=require",
                "postgres://u@h/db?sslmode=require&connect_timeout=2",
            ),
            (
                "postgres://u@h/db?connect_timeout=9",
                "postgres://u@h/db?connect_timeout=9",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(with_connect_timeout(url), expected, "{url}");
        }
    }

    #[actix_web::test]
    async fn a_write_that_panics_in_a_nested_transaction_is_refused_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let pool =
            connect_and_migrate(&url, &PoolOptions::default(), QueryCounter::default()).unwrap();
        let writer = Writer::start(&url, &pool, QueryCounter::default()).unwrap();

        let panicked = writer
            .run(
                WriteKind::Transaction,
                |conn| {
                    insert_user(conn, "user_lost")?;
                    conn.transaction(|_| -> Result<(), ApiError> { panic!("a bug in a write") })
                },
                |_| {},
            )
            .await;
        let after = writer
            .run(
                WriteKind::Transaction,
                |conn| Ok(insert_user(conn, "user_kept")?),
                |_| {},
            )
            .await;

        assert!(panicked.is_err(), "the panicking write is not acknowledged");
        assert!(after.is_ok(), "the next write succeeds: {after:?}");
        assert_eq!(
            users(&pool),
            1,
            "only the second write is committed, and readers see it"
        );
    }
}

#[derive(diesel::QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    data_version: i64,
}

/// SQLite's `PRAGMA data_version` on `conn`: it changes when another connection (another
/// process, or a connection of ours that is not the writer's) commits, and not for this
/// connection's own commits. `None` on PostgreSQL. Not counted by [`QueryCounter`]: it is the
/// watcher's, not a request's.
pub fn data_version(conn: &mut DbConnection) -> diesel::QueryResult<Option<i64>> {
    let DbConnection::Sqlite(conn) = conn else {
        return Ok(None);
    };
    CHECKING.set(true);
    let read = diesel::sql_query("PRAGMA data_version").get_result::<DataVersion>(conn);
    CHECKING.set(false);
    read.map(|row| Some(row.data_version))
}

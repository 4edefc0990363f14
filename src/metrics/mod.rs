//! What the service counts, and how Prometheus reads it (`GET /metrics`, served by
//! `routes::metrics`).
//!
//! Policy:
//! - One recorder per process: `metrics-exporter-prometheus`'s, installed by [`install`] the
//!   first time a server is built (every later server of the process, as in the tests, shares
//!   it). Every family is process-wide, so counters only ever grow; a scrape compares them
//!   with the previous one.
//! - Recording stays off the request's expensive parts. Counters with a fixed set of labels
//!   (authentication outcomes, cache hits, misses and evictions, invalidations, database
//!   errors, lookup-limit decisions) are plain atomics here, one per label value, bumped with a
//!   relaxed add and copied into the recorder when scraped. The HTTP families, recorded on
//!   every request, are atomics too, a series per route, method and status (and a fixed array
//!   of buckets for the latency), rendered by [`http`] itself; their handles are resolved once
//!   per series on each worker. Gauges (pool, cache entries, pending usage, the
//!   listener) are read from the live objects at scrape time ([`Snapshot`]), not kept up to
//!   date on every change.
//! - Labels are bounded: route templates (never the raw path, which a client chooses), a
//!   fixed list of methods (anything else is `other`), the statuses this service answers, and
//!   the enums below. No key id, owner or client address is ever a label.
//! - A leaf: it imports nothing of this crate but the error type, so the caches, the database
//!   layer and authentication can all record into it.

pub mod http;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The buckets of every latency histogram, in seconds: 250 µs to 10 s (the HTTP latency's
/// and those of the recorder alike).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes (they are
/// kept in a queue until then).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub const HTTP_REQUESTS: &str = "admin_api_keys_http_requests_total";
pub const HTTP_DURATION: &str = "admin_api_keys_http_request_duration_seconds";
pub const AUTH_OUTCOMES: &str = "admin_api_keys_auth_outcomes_total";
pub const CACHE_HITS: &str = "admin_api_keys_cache_hits_total";
pub const CACHE_MISSES: &str = "admin_api_keys_cache_misses_total";
pub const CACHE_EVICTIONS: &str = "admin_api_keys_cache_evictions_total";
pub const CACHE_ENTRIES: &str = "admin_api_keys_cache_entries";
pub const INVALIDATIONS: &str = "admin_api_keys_invalidations_received_total";
pub const LISTENER_STATE: &str = "admin_api_keys_invalidation_listener_state";
pub const LISTENER_LOSSES: &str = "admin_api_keys_invalidation_listener_losses_total";
pub const LISTENER_RECONNECTS: &str = "admin_api_keys_invalidation_listener_reconnects_total";
pub const POOL_CONNECTIONS: &str = "admin_api_keys_db_pool_connections";
pub const POOL_MAX: &str = "admin_api_keys_db_pool_max_connections";
pub const POOL_WAIT: &str = "admin_api_keys_db_pool_wait_seconds";
pub const DB_ERRORS: &str = "admin_api_keys_db_errors_total";
pub const USAGE_PENDING: &str = "admin_api_keys_usage_pending_keys";
pub const USAGE_FLUSH: &str = "admin_api_keys_usage_flush_duration_seconds";
pub const USAGE_FLUSHES: &str = "admin_api_keys_usage_flushes_total";
pub const USAGE_FLUSHED_KEYS: &str = "admin_api_keys_usage_flushed_keys_total";
pub const LOOKUP_LIMIT: &str = "admin_api_keys_lookup_limit_decisions_total";
pub const BUILD_INFO: &str = "admin_api_keys_build_info";

/// Declares an enum of label values with its `ALL` list and `as_str`.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            pub const COUNT: usize = Self::ALL.len();

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $value),+ }
            }
        }
    };
}

label_enum! {
    /// Which way a key was presented.
    Via {
        /// As this API's own `Authorization: Bearer`.
        Api => "api",
        /// To `/forward-auth`, by a proxy.
        ForwardAuth => "forward_auth",
        /// As the `token` of `/introspect` (the caller's own key counts under `api`).
        Introspection => "introspection",
    }
}

label_enum! {
    /// What the verification of a presented key came to.
    AuthOutcome {
        /// A usable key with some access.
        Ok => "ok",
        /// No key at all.
        Missing => "missing",
        /// Not a key: a malformed header, or a token of the wrong format or checksum.
        Malformed => "malformed",
        /// Well-formed, but not a key this service knows (never issued, or deleted).
        Unknown => "unknown",
        Disabled => "disabled",
        Expired => "expired",
        /// The key's owner is disabled, or (a project key) lost access to the project.
        OwnerDisabled => "owner_disabled",
        /// A project key presented to the admin API.
        WrongKind => "wrong_kind",
        /// Two different keys, or several `Authorization` headers.
        MultipleKeys => "multiple_keys",
        /// A usable key left with no effective scope and no effective permission.
        NoAccess => "no_access",
        /// The client's budget of lookups of unknown keys is spent (429).
        RateLimited => "rate_limited",
        /// The key could not be checked (the database is unavailable, 503, or a 500).
        Error => "error",
    }
}

label_enum! {
    /// The bounded caches (`cache`).
    CacheName {
        /// Key hash → auth record.
        Auth => "auth",
        /// Project key hash → auth record.
        ProjectKeys => "project_keys",
        /// Hashes the database did not know.
        UnknownKeys => "unknown_keys",
        /// Keys as retrieve shows them.
        Views => "views",
    }
}

label_enum! {
    /// What an invalidation received from elsewhere asked for.
    InvalidationKind {
        /// A key was made: its hash joins the set of live hashes.
        KeyCreated => "key_created",
        /// A key was deleted: its hash leaves the set.
        KeyDeleted => "key_deleted",
        /// A key changed: its cached record and view are dropped.
        Key => "key",
        /// A user changed: their keys' records are dropped.
        User => "user",
        /// Who may use a project's keys changed: their records are dropped.
        Project => "project",
        /// Drop everything (a truncate, a payload this version does not know, a burst).
        All => "all",
        /// SQLite: another process committed (`PRAGMA data_version` moved); caches emptied.
        ExternalCommit => "external_commit",
    }
}

label_enum! {
    /// What keeps the caches in sync with commits made elsewhere.
    SyncState {
        /// PostgreSQL: the listener holds a valid lease.
        Listening => "listening",
        /// PostgreSQL: the listener's lease ran out (lost, stuck or reconnecting); the caches
        /// are bypassed.
        Lost => "lost",
        /// SQLite: the `data_version` watcher.
        Watching => "watching",
        /// Nothing (yet).
        None => "none",
    }
}

label_enum! {
    /// Why a database call failed.
    DbError {
        /// No connection became free (or could be opened) within the acquire timeout.
        PoolTimeout => "pool_timeout",
        /// The database went away during the call (503).
        Unavailable => "unavailable",
        /// Anything else (500).
        Internal => "internal",
    }
}

label_enum! {
    /// What the lookup limit (`lookup_limit`) decided.
    LookupDecision {
        /// A unit was taken: the lookup went ahead.
        Allowed => "allowed",
        /// The client had no unit left: 429, no lookup.
        Refused => "refused",
        /// The lookup found what it looked for: the unit was given back.
        Refunded => "refunded",
    }
}

/// One atomic per label value of a fixed family.
type Counts<const N: usize> = [AtomicU64; N];

static AUTH: [Counts<{ AuthOutcome::COUNT }>; Via::COUNT] =
    [const { [const { AtomicU64::new(0) }; AuthOutcome::COUNT] }; Via::COUNT];
static HITS: Counts<{ CacheName::COUNT }> = [const { AtomicU64::new(0) }; CacheName::COUNT];
static MISSES: Counts<{ CacheName::COUNT }> = [const { AtomicU64::new(0) }; CacheName::COUNT];
static EVICTIONS: Counts<{ CacheName::COUNT }> = [const { AtomicU64::new(0) }; CacheName::COUNT];
static INVALIDATIONS_RECEIVED: Counts<{ InvalidationKind::COUNT }> =
    [const { AtomicU64::new(0) }; InvalidationKind::COUNT];
static DB_ERROR_COUNTS: Counts<{ DbError::COUNT }> = [const { AtomicU64::new(0) }; DbError::COUNT];
static LOOKUPS: Counts<{ LookupDecision::COUNT }> =
    [const { AtomicU64::new(0) }; LookupDecision::COUNT];
/// Flushes that wrote (`[0]`) or failed (`[1]`), and keys written.
static FLUSHES: Counts<2> = [const { AtomicU64::new(0) }; 2];
static FLUSHED_KEYS: AtomicU64 = AtomicU64::new(0);
static LOSSES: AtomicU64 = AtomicU64::new(0);
static RECONNECTS: AtomicU64 = AtomicU64::new(0);

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts the outcome of one presented key.
pub fn auth(via: Via, outcome: AuthOutcome) {
    bump(&AUTH[via as usize][outcome as usize]);
}

/// Counts a lookup that the cache `cache` answered.
pub fn cache_hit(cache: CacheName) {
    bump(&HITS[cache as usize]);
}

/// Counts a lookup that the cache `cache` could not answer.
pub fn cache_miss(cache: CacheName) {
    bump(&MISSES[cache as usize]);
}

/// Counts an entry the cache `cache` dropped to make room.
pub fn cache_evicted(cache: CacheName) {
    bump(&EVICTIONS[cache as usize]);
}

/// Counts an invalidation received from the database (a notification, or a commit the SQLite
/// watcher noticed).
pub fn invalidation_received(kind: InvalidationKind) {
    bump(&INVALIDATIONS_RECEIVED[kind as usize]);
}

/// Counts the invalidation listener losing its connection.
pub fn listener_lost() {
    bump(&LOSSES);
}

/// Counts the invalidation listener coming back.
pub fn listener_reconnected() {
    bump(&RECONNECTS);
}

/// Counts a failed database call.
pub fn db_error(kind: DbError) {
    bump(&DB_ERROR_COUNTS[kind as usize]);
}

/// Counts a decision of the lookup limit.
pub fn lookup_decision(decision: LookupDecision) {
    bump(&LOOKUPS[decision as usize]);
}

/// Records how long a request waited for a pooled connection.
pub fn pool_wait(waited: Duration) {
    if let Some(recorder) = RECORDER.get().and_then(Option::as_ref) {
        recorder.pool_wait.record(waited);
    }
}

/// Records a flush of `last_used_at` that took `took` and wrote `keys` keys (`None`: it
/// failed).
pub fn usage_flushed(took: Duration, keys: Option<usize>) {
    match keys {
        Some(keys) => {
            bump(&FLUSHES[0]);
            FLUSHED_KEYS.fetch_add(keys as u64, Ordering::Relaxed);
        }
        None => bump(&FLUSHES[1]),
    }
    if let Some(recorder) = RECORDER.get().and_then(Option::as_ref) {
        recorder.usage_flush.record(took);
    }
}

/// The process's recorder, with the histogram handles recorded outside requests.
struct Recorder {
    handle: PrometheusHandle,
    pool_wait: ::metrics::Histogram,
    usage_flush: ::metrics::Histogram,
}

/// `None` when another recorder was installed first (then `/metrics` answers 503).
static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, once; later calls do
/// nothing. False when another recorder was installed first.
pub fn install() -> bool {
    RECORDER.get_or_init(build_recorder).is_some()
}

fn build_recorder() -> Option<Recorder> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .expect("the buckets are not empty");
    let handle = match builder.install_recorder() {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics answers 503");
            return None;
        }
    };
    describe();
    ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Without it, histogram samples would queue up between scrapes (or for ever, unscraped).
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded at scrapes only");
    }
    Some(Recorder {
        handle,
        pool_wait: ::metrics::histogram!(POOL_WAIT),
        usage_flush: ::metrics::histogram!(USAGE_FLUSH),
    })
}

/// The `# HELP` lines.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        AUTH_OUTCOMES,
        "Presented keys, by how they were presented and what their verification came to."
    );
    describe_counter!(CACHE_HITS, "Lookups a cache answered, by cache.");
    describe_counter!(CACHE_MISSES, "Lookups a cache could not answer, by cache.");
    describe_counter!(
        CACHE_EVICTIONS,
        "Entries a cache dropped to make room, by cache."
    );
    describe_gauge!(
        CACHE_ENTRIES,
        "Entries each cache holds (live_hashes: the set of live key hashes)."
    );
    describe_counter!(
        INVALIDATIONS,
        "Cache invalidations received from the database (NOTIFY, or the SQLite watcher), by kind."
    );
    describe_gauge!(
        LISTENER_STATE,
        "1 for the current state of what keeps the caches in sync with other writers."
    );
    describe_counter!(
        LISTENER_LOSSES,
        "Times the invalidation listener lost its database connection."
    );
    describe_counter!(
        LISTENER_RECONNECTS,
        "Times the invalidation listener reconnected."
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Open connections of the database pool, idle or in use."
    );
    describe_gauge!(POOL_MAX, "The most connections the database pool opens.");
    describe_histogram!(
        POOL_WAIT,
        Unit::Seconds,
        "Time a database call waited for a pooled connection."
    );
    describe_counter!(DB_ERRORS, "Failed database calls, by kind.");
    describe_gauge!(
        USAGE_PENDING,
        "Keys whose latest use is not yet written to last_used_at."
    );
    describe_histogram!(
        USAGE_FLUSH,
        Unit::Seconds,
        "Time a write of pending last_used_at values took."
    );
    describe_counter!(
        USAGE_FLUSHES,
        "Writes of pending last_used_at values, by result."
    );
    describe_counter!(USAGE_FLUSHED_KEYS, "Keys whose last_used_at was written.");
    describe_counter!(
        LOOKUP_LIMIT,
        "Decisions of the per-client budget of lookups of unknown keys."
    );
    describe_gauge!(BUILD_INFO, "1, labelled with the running version.");
}

/// What a scrape reads from the live server.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub pool_idle: u32,
    pub pool_in_use: u32,
    pub pool_max: u32,
    /// Entries of each cache, in [`CacheName::ALL`] order.
    pub cache_entries: [usize; CacheName::COUNT],
    /// Hashes in the set of live key hashes.
    pub live_hashes: usize,
    pub usage_pending: usize,
    pub sync: Option<SyncState>,
}

/// The text exposition of every family, with the gauges of `snapshot`; `None` when the
/// recorder is not ours (see [`install`]).
pub fn render(snapshot: &Snapshot) -> Option<String> {
    let recorder = RECORDER.get().and_then(Option::as_ref)?;
    publish_counters();
    publish_gauges(snapshot);
    let mut text = recorder.handle.render();
    http::render(&mut text);
    Some(text)
}

/// Copies the atomics of the fixed families into the recorder.
fn publish_counters() {
    use ::metrics::counter;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    for via in Via::ALL {
        for outcome in AuthOutcome::ALL {
            counter!(AUTH_OUTCOMES, "via" => via.as_str(), "outcome" => outcome.as_str())
                .absolute(load(&AUTH[*via as usize][*outcome as usize]));
        }
    }
    for cache in CacheName::ALL {
        let i = *cache as usize;
        counter!(CACHE_HITS, "cache" => cache.as_str()).absolute(load(&HITS[i]));
        counter!(CACHE_MISSES, "cache" => cache.as_str()).absolute(load(&MISSES[i]));
        counter!(CACHE_EVICTIONS, "cache" => cache.as_str()).absolute(load(&EVICTIONS[i]));
    }
    for kind in InvalidationKind::ALL {
        counter!(INVALIDATIONS, "kind" => kind.as_str())
            .absolute(load(&INVALIDATIONS_RECEIVED[*kind as usize]));
    }
    counter!(LISTENER_LOSSES).absolute(load(&LOSSES));
    counter!(LISTENER_RECONNECTS).absolute(load(&RECONNECTS));
    for kind in DbError::ALL {
        counter!(DB_ERRORS, "kind" => kind.as_str())
            .absolute(load(&DB_ERROR_COUNTS[*kind as usize]));
    }
    for decision in LookupDecision::ALL {
        counter!(LOOKUP_LIMIT, "decision" => decision.as_str())
            .absolute(load(&LOOKUPS[*decision as usize]));
    }
    counter!(USAGE_FLUSHES, "result" => "ok").absolute(load(&FLUSHES[0]));
    counter!(USAGE_FLUSHES, "result" => "error").absolute(load(&FLUSHES[1]));
    counter!(USAGE_FLUSHED_KEYS).absolute(load(&FLUSHED_KEYS));
}

fn publish_gauges(snapshot: &Snapshot) {
    use ::metrics::gauge;
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(snapshot.pool_idle));
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(snapshot.pool_in_use));
    gauge!(POOL_MAX).set(f64::from(snapshot.pool_max));
    for cache in CacheName::ALL {
        gauge!(CACHE_ENTRIES, "cache" => cache.as_str())
            .set(snapshot.cache_entries[*cache as usize] as f64);
    }
    gauge!(CACHE_ENTRIES, "cache" => "live_hashes").set(snapshot.live_hashes as f64);
    gauge!(USAGE_PENDING).set(snapshot.usage_pending as f64);
    let current = snapshot.sync.unwrap_or(SyncState::None);
    for state in SyncState::ALL {
        gauge!(LISTENER_STATE, "state" => state.as_str()).set(if *state == current {
            1.0
        } else {
            0.0
        });
    }
}

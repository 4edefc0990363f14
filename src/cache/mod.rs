//! In-process caches, so that authenticating a request needs no database round trip in steady
//! state, and neither does retrieving a key; and the listener that keeps them true.
//!
//! - [`auth`]: key hash → auth record (with the owner), and hashes the database does not know.
//!   A change to a user drops the records of all their keys.
//! - [`project`]: project key hash → its auth record (project, owner and the owner's standing).
//!   A change to the project's access (archive, members, service accounts) drops the records
//!   of all its keys, and a change to a user those of their project keys too.
//! - [`views`]: retrieved keys by id, with their rendered JSON.
//! - [`usage`]: `last_used_at` uses not yet written, overlaid on what is shown.
//! - [`keyset`]: the set of live key hashes (by 64-bit prefix): a hash not in it is refused
//!   without a lookup. Unlike the others it holds every stored key, not a bounded few.
//! - [`invalidation`]: the PostgreSQL `LISTEN` thread that applies other replicas' changes.
//!
//! Policy:
//! - Every cache is bounded by entry count (S3-FIFO eviction); nothing here grows with the
//!   number of stored keys.
//! - A change drops what it makes wrong, as an [`Invalidation`]: the service that makes the
//!   change returns it and it is applied right after the commit (see `services`), and every
//!   other replica applies the same through PostgreSQL `NOTIFY`. Entries also expire after a
//!   TTL: the backstop for changes made behind the service's back, not the mechanism.
//! - With a listener, the caches are trusted only under a lease that the listener renews each
//!   time it proves its connection alive; a listener that died quietly, or is stuck, lets the
//!   lease run out within a second and the caches are bypassed. A listener that reconnects
//!   empties them first, because notifications sent in between are lost.
//! - A fill whose database read may predate an invalidation of the same entry is discarded, so
//!   a slow lookup cannot put back what a change just removed. Each invalidation stamps the
//!   sequence number of the entries it touches (key ids hash onto [`STRIPES`] stamps; the
//!   unknown-hash cache has one stamp of its own); a fill is admitted only if the stamps of
//!   what it fills are older than the lookup that missed. Invalidating one key therefore does
//!   not void in-flight fills of unrelated keys.
//! - The set of live hashes is loaded at start and kept true by the same invalidations (a
//!   created key adds its hash, a deleted one removes it). Whatever may have missed some
//!   (a reset, a listener that lost its connection, a payload this version does not know)
//!   marks it stale; the listener (on PostgreSQL) or the periodic sweep (SQLite) reloads it.
//!   A stale set, or one whose lease ran out, still says which hashes are live, but no longer
//!   which are not: those are then looked up on the client's budget (`lookup_limit`).
//! - With a listener, a hash not in the set may be a key another replica made a moment ago.
//!   The request then waits until the listener has applied everything committed before it
//!   arrived ([`Cache::wait_for_sync_after`]: one ping, ~0.3 s), and asks the set again.

pub mod auth;
pub mod headers;
pub mod invalidation;
pub mod keyset;
pub mod project;
pub mod sqlite_watch;
pub mod usage;
pub mod views;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};

use crate::metrics::{CacheName, SyncState};

/// A bounded cache whose evictions are counted (`metrics`).
type Bounded<K, V> = quick_cache::sync::Cache<K, V, UnitWeighter, DefaultHashBuilder, Evictions>;

pub use auth::{CachedKey, Lookup};
pub use keyset::{HashPrefix, KeySet};
pub use project::{CachedProjectKey, ProjectLookup};
pub use views::CachedView;

use crate::domain::secret::{ApiKeySecret, KeyDigest, digest_key};

/// Stamps that key ids hash onto (a power of two).
pub const STRIPES: usize = 1024;

/// What a change makes wrong in the caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// A key was made (or its hash rewritten) with this hash: it joins the set of live hashes,
    /// and may sit in the unknown-hash cache.
    KeyCreated(HashPrefix),
    /// The key with this hash was deleted (or its hash rewritten): it leaves the set.
    KeyDeleted(HashPrefix),
    /// A key changed or was deleted: drop its auth record and its view.
    Key(String),
    /// A user changed or was deleted: drop the auth records of all their keys, and the views
    /// (which show the owner).
    User(String),
    /// Who may use the keys of this project changed (the project was archived, a member was
    /// removed or changed, a service account was deleted): drop the auth records of the
    /// project's keys.
    Project(String),
    /// The stored `last_used_at` of these keys moved: drop their views.
    Views(Vec<String>),
    /// Anything may have changed: drop everything.
    All,
}

impl Invalidation {
    /// The key `secret` was made.
    pub fn created(secret: &ApiKeySecret) -> Self {
        Self::KeyCreated(keyset::prefix_of(&digest_key(secret.expose())))
    }

    /// The key stored with `key_hash` (hex) was deleted; a hash that is not hex (never
    /// written by this service) makes the set stale, to be reloaded.
    pub fn deleted(key_hash: &str) -> Self {
        keyset::prefix_of_hex(key_hash).map_or(Self::All, Self::KeyDeleted)
    }
}

/// What the set of live hashes says of a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// A stored key has this hash (or had, a moment ago): look it up.
    Live,
    /// No stored key has this hash, as of the latest change this process has applied.
    Absent,
    /// Not in the set, but the set may be missing changes (stale, or its lease ran out).
    Unsure,
}

/// Reads every stored hash, for [`Cache::reload_keys`].
pub type KeyLoader =
    Box<dyn Fn() -> Result<KeySet, Box<dyn std::error::Error + Send + Sync>> + Send + Sync>;

/// Sizes and lifetime of the caches.
#[derive(Clone, Copy, Debug)]
pub struct CacheOptions {
    /// Most entries each cache holds (known keys, unknown hashes, views).
    pub capacity: usize,
    /// How long an entry is trusted without a notification; zero disables caching.
    pub ttl: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(30),
        }
    }
}

/// The sequence number a lookup missed at; hand it back with the fill.
#[derive(Debug)]
pub struct FillTicket(u64);

/// The caches; see the module docs for their policy.
pub struct Cache {
    known: Bounded<KeyDigest, std::sync::Arc<CachedKey>>,
    /// Project keys (`sk-proj-`, `sk-svcacct-`) by hash; indexed with `known`'s entries.
    project_keys: Bounded<KeyDigest, std::sync::Arc<CachedProjectKey>>,
    unknown: Bounded<KeyDigest, i64>,
    views: Bounded<String, std::sync::Arc<CachedView>>,
    /// Each project's per-model request budgets and limits (forward auth's rate limits); its
    /// remembered limits are dropped with the project's keys.
    pub model_limits: crate::model_limits::ModelLimiter,
    ttl_secs: i64,
    capacity: usize,
    /// Until when (nanoseconds after `epoch`) the caches may be used; `u64::MAX` without a
    /// listener. Zero while invalidations may be missed.
    lease: AtomicU64,
    epoch: Instant,
    /// Moves on every invalidation; only changed with `guarded` held.
    sequence: AtomicU64,
    /// Orders fills against invalidations (never taken on a hit), and holds what they share.
    guarded: Mutex<Guarded>,
    hasher: RandomState,
    /// The set of live hashes; see the module policy.
    keys: RwLock<Keys>,
    /// Reads the set afresh (set once at start).
    loader: OnceLock<KeyLoader>,
    /// When (nanoseconds after `epoch`) the latest listener ping that has been applied
    /// started: everything committed before it is in the caches and the set.
    synced: AtomicU64,
    /// Wakes the requests waiting for `synced` to move.
    sync: tokio::sync::Notify,
    /// Set by [`Cache::doubt_key_set`].
    doubted: std::sync::atomic::AtomicBool,
    /// Set by the first load of the set that succeeded.
    loaded_once: std::sync::atomic::AtomicBool,
    /// Set by [`Cache::watched`]: without a listener, a watcher syncs the caches instead.
    watched: std::sync::atomic::AtomicBool,
    /// The MCP presets (`MCP_PRESETS`): cached keys carry their policy with the preset
    /// resolved, so an MCP check reads nothing else.
    mcp_presets: crate::domain::McpPresets,
}

/// The set of live hashes, and whether it can be trusted to say which hashes are not live.
struct Keys {
    set: KeySet,
    /// Loaded, and not marked stale since.
    fresh: bool,
    /// Moves each time the set is marked stale, so a reload that raced one stays stale.
    generation: u64,
    /// While reloads are in flight: each hash added (`true`) or removed (`false`) since the
    /// first of them began, in order. A reload's read may predate some of them, so they are
    /// replayed onto the set it installs; otherwise a key created during a reload would be
    /// missing from a set that claims to be fresh, and refused.
    journal: Vec<(keyset::HashPrefix, bool)>,
    /// Reloads in flight (the journal is kept while there is one).
    reloading: usize,
}

impl Keys {
    /// Applies an added (`live`) or removed hash, noting it for the reloads in flight.
    fn change(&mut self, prefix: keyset::HashPrefix, live: bool) {
        if live {
            self.set.insert(prefix);
        } else {
            self.set.remove(prefix);
        }
        if self.reloading > 0 {
            self.journal.push((prefix, live));
        }
    }
}

/// What fills and invalidations change together.
struct Guarded {
    /// The sequence number of the latest invalidation of each stripe of key ids.
    key_stamps: Box<[u64; STRIPES]>,
    /// ... of the unknown-hash cache.
    unknown_stamp: u64,
    /// ... of everything at once.
    all_stamp: u64,
    /// Which digest each cached key id is under, so a key is dropped by id without a scan.
    /// Entries of keys the cache has since evicted are pruned once the index outgrows it.
    digests: HashMap<String, KeyDigest>,
    /// The digests cached for each owner, so a user's keys are dropped without a scan; pruned
    /// like `digests`.
    by_owner: HashMap<String, Vec<KeyDigest>>,
    /// Entries across `by_owner`.
    by_owner_len: usize,
    /// The digests of project keys cached for each project; pruned like `digests`.
    by_project: HashMap<String, Vec<KeyDigest>>,
    /// Entries across `by_project`.
    by_project_len: usize,
}

impl Cache {
    /// Empty caches, trusted for good (no listener is needed) until a lease is set.
    pub fn new(options: CacheOptions) -> Self {
        let capacity = options.capacity.max(1);
        Self {
            known: bounded(capacity, CacheName::Auth),
            project_keys: bounded(capacity, CacheName::ProjectKeys),
            unknown: bounded(capacity, CacheName::UnknownKeys),
            views: bounded(capacity, CacheName::Views),
            model_limits: crate::model_limits::ModelLimiter::new(),
            ttl_secs: i64::try_from(options.ttl.as_secs()).unwrap_or(i64::MAX),
            capacity,
            lease: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            sequence: AtomicU64::new(0),
            guarded: Mutex::new(Guarded {
                key_stamps: Box::new([0; STRIPES]),
                unknown_stamp: 0,
                all_stamp: 0,
                digests: HashMap::new(),
                by_owner: HashMap::new(),
                by_owner_len: 0,
                by_project: HashMap::new(),
                by_project_len: 0,
            }),
            hasher: RandomState::new(),
            keys: RwLock::new(Keys {
                set: KeySet::default(),
                fresh: false,
                generation: 0,
                journal: Vec::new(),
                reloading: 0,
            }),
            loader: OnceLock::new(),
            synced: AtomicU64::new(0),
            sync: tokio::sync::Notify::new(),
            doubted: std::sync::atomic::AtomicBool::new(false),
            loaded_once: std::sync::atomic::AtomicBool::new(false),
            watched: std::sync::atomic::AtomicBool::new(false),
            mcp_presets: crate::domain::McpPresets::default(),
        }
    }

    /// The same caches, resolving MCP presets with `presets` (set before any fill).
    pub fn with_mcp_presets(mut self, presets: crate::domain::McpPresets) -> Self {
        self.mcp_presets = presets;
        self
    }

    /// The MCP presets keys' policies are resolved with.
    pub fn mcp_presets(&self) -> &crate::domain::McpPresets {
        &self.mcp_presets
    }

    /// Applies one invalidation.
    pub fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::KeyCreated(prefix) => {
                self.write_keys().change(*prefix, true);
                self.forget_unknown();
            }
            Invalidation::KeyDeleted(prefix) => {
                self.write_keys().change(*prefix, false);
            }
            Invalidation::Key(key_id) => self.forget_key(key_id),
            Invalidation::User(user_id) => self.forget_owner(user_id),
            Invalidation::Views(key_ids) => self.forget_views(key_ids.iter().map(String::as_str)),
            Invalidation::Project(project_id) => self.forget_project(project_id),
            Invalidation::All => self.reset(),
        }
    }

    /// Drops the auth record and view of the key `key_id`: it was changed or deleted.
    pub fn forget_key(&self, key_id: &str) {
        let mut guarded = self.lock();
        let stamp = self.next_sequence();
        guarded.key_stamps[self.stripe(key_id)] = stamp;
        if let Some(digest) = guarded.digests.remove(key_id) {
            self.known.remove(&digest);
            self.project_keys.remove(&digest);
        }
        self.views.remove(key_id);
    }

    /// Drops the auth records of every key of the user `user_id` (admin keys and the project
    /// keys they own), and every view (views show the owner). Rare (a user was changed), so it
    /// also voids every fill in flight rather than track which of them read this user.
    pub fn forget_owner(&self, user_id: &str) {
        let mut guarded = self.lock();
        guarded.all_stamp = self.next_sequence();
        if let Some(digests) = guarded.by_owner.remove(user_id) {
            guarded.by_owner_len -= digests.len();
            for digest in &digests {
                self.known.remove(digest);
                self.project_keys.remove(digest);
            }
        }
        self.views.clear();
    }

    /// Drops the auth records of every key of the project `project_id`: who may use them
    /// changed. Rare, so like [`Cache::forget_owner`] it voids every fill in flight.
    pub fn forget_project(&self, project_id: &str) {
        self.model_limits.forget_project(project_id);
        let mut guarded = self.lock();
        guarded.all_stamp = self.next_sequence();
        if let Some(digests) = guarded.by_project.remove(project_id) {
            guarded.by_project_len -= digests.len();
            for digest in &digests {
                self.project_keys.remove(digest);
            }
        }
    }

    /// Drops the cached views of `key_ids`: their `last_used_at` was just written.
    pub fn forget_views<'a>(&self, key_ids: impl IntoIterator<Item = &'a str>) {
        let mut guarded = self.lock();
        let stamp = self.next_sequence();
        for key_id in key_ids {
            guarded.key_stamps[self.stripe(key_id)] = stamp;
            self.views.remove(key_id);
        }
    }

    /// Empties the unknown-hash cache: a key was created, and its hash may be in there.
    pub fn forget_unknown(&self) {
        let mut guarded = self.lock();
        guarded.unknown_stamp = self.next_sequence();
        self.unknown.clear();
    }

    /// Empties every cache, and marks the set of live hashes stale (the lease is unchanged).
    pub fn reset(&self) {
        self.mark_keys_stale();
        self.reset_bounded();
    }

    /// Empties the bounded caches, leaving the set of live hashes alone.
    fn reset_bounded(&self) {
        let mut guarded = self.lock();
        guarded.all_stamp = self.next_sequence();
        guarded.digests.clear();
        guarded.by_owner.clear();
        guarded.by_owner_len = 0;
        guarded.by_project.clear();
        guarded.by_project_len = 0;
        self.known.clear();
        self.project_keys.clear();
        self.unknown.clear();
        self.views.clear();
        self.model_limits.forget_all();
    }

    /// Stops using the caches, and empties them, until the lease is renewed.
    pub fn distrust(&self) {
        self.lease.store(0, Ordering::Release);
        self.reset();
    }

    /// Lets the caches be used until `until`.
    pub fn renew_lease(&self, until: Instant) {
        let nanos = until.saturating_duration_since(self.epoch).as_nanos();
        self.lease.store(
            u64::try_from(nanos).unwrap_or(u64::MAX - 1),
            Ordering::Release,
        );
    }

    /// Notes that the listener has applied everything committed before `started` (a ping's
    /// start), and wakes the requests waiting for it.
    pub fn synced_through(&self, started: Instant) {
        let nanos = u64::try_from(started.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX);
        self.synced.fetch_max(nanos, Ordering::AcqRel);
        self.sync.notify_waiters();
    }

    /// Now, as [`Cache::wait_for_sync_after`] takes it.
    pub fn instant(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits (at most `timeout`) until the listener has applied everything committed before
    /// `arrived` (an [`Cache::instant`]); false if it did not in time.
    pub async fn wait_for_sync_after(&self, arrived: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.sync.notified();
            tokio::pin!(notified);
            // Registered before the check, so a sync between the two is not missed.
            notified.as_mut().enable();
            if self.synced.load(Ordering::Acquire) > arrived {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.synced.load(Ordering::Acquire) > arrived;
            }
        }
    }

    /// True when something keeps the caches in sync with commits made elsewhere and reports
    /// it through [`Cache::synced_through`]: the PostgreSQL listener (the lease is not
    /// unlimited), or the SQLite watcher (see `cache::sqlite_watch`).
    pub fn listening(&self) -> bool {
        self.lease.load(Ordering::Acquire) != u64::MAX || self.watched.load(Ordering::Acquire)
    }

    /// True when the PostgreSQL listener keeps the caches (their lease is not unlimited).
    pub fn lease_limited(&self) -> bool {
        self.lease.load(Ordering::Acquire) != u64::MAX
    }

    /// Notes that a watcher now syncs the caches (see [`Cache::listening`]).
    pub fn watched(&self) {
        self.watched.store(true, Ordering::Release);
    }

    /// What the set of live hashes says of `prefix`.
    pub fn presence(&self, prefix: HashPrefix) -> Presence {
        let keys = self.read_keys();
        if keys.set.contains(prefix) {
            Presence::Live
        } else if keys.fresh && self.trusted() && !self.doubted.load(Ordering::Relaxed) {
            Presence::Absent
        } else {
            Presence::Unsure
        }
    }

    /// While `doubt` holds, the set says which hashes are live but not which are not, as
    /// while a listener is down: hashes not in it are looked up on the clients' budgets. For
    /// tests of that budget, which a healthy listener would otherwise never let them reach.
    pub fn doubt_key_set(&self, doubt: bool) {
        self.doubted.store(doubt, Ordering::Relaxed);
    }

    /// Replaces the set of live hashes with `set`, read from the database; it is trusted
    /// unless it was marked stale since `generation` (from [`Cache::keys_generation`]).
    pub fn load_keys(&self, set: KeySet, generation: u64) {
        let mut keys = self.write_keys();
        keys.set = set;
        keys.fresh = keys.generation == generation;
    }

    /// The count of times the set was marked stale, to hand to [`Cache::load_keys`].
    pub fn keys_generation(&self) -> u64 {
        self.read_keys().generation
    }

    /// Registers how the set is read afresh; the first registration holds.
    pub fn set_key_loader(&self, loader: KeyLoader) {
        let _ = self.loader.set(loader);
    }

    /// Reads the set of live hashes afresh, with the registered loader (blocking).
    pub fn reload_keys(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.loader.get().is_none() {
            return Ok(());
        }
        let generation = self.begin_reload();
        self.finish_reload(generation)
    }

    /// Notes that a reload of the set is under way, before it starts (so nothing else starts
    /// one meanwhile, see [`Cache::keys_need_reload`]); returns the generation to hand to
    /// [`Cache::finish_reload`], which must follow.
    pub fn begin_reload(&self) -> u64 {
        let mut keys = self.write_keys();
        keys.reloading += 1;
        keys.generation
    }

    /// Reads the set afresh with the registered loader (blocking) and installs it, with the
    /// changes made while it was read replayed onto it; ends what [`Cache::begin_reload`]
    /// began.
    pub fn finish_reload(
        &self,
        generation: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let loaded = self.loader.get().map(|loader| loader());
        let mut keys = self.write_keys();
        keys.reloading -= 1;
        let result = match loaded {
            None => Ok(()),
            Some(loaded) => loaded.map(|mut set| {
                // What changed while the table was read: its read may or may not include it.
                for &(prefix, live) in &keys.journal {
                    if live {
                        set.insert(prefix);
                    } else {
                        set.remove(prefix);
                    }
                }
                keys.set = set;
                keys.fresh = keys.generation == generation;
                self.loaded_once.store(true, Ordering::Release);
            }),
        };
        if keys.reloading == 0 {
            keys.journal = Vec::new();
        }
        result
    }

    /// True once a load of the set has succeeded (it may be stale since).
    pub fn keys_loaded_once(&self) -> bool {
        self.loaded_once.load(Ordering::Acquire)
    }

    /// True when the set of live hashes was marked stale (or never loaded).
    pub fn keys_stale(&self) -> bool {
        !self.read_keys().fresh
    }

    /// True while a reload of the set is reading the tables.
    pub fn keys_reloading(&self) -> bool {
        self.read_keys().reloading > 0
    }

    /// True when the set is stale and no reload is under way to fix it.
    pub fn keys_need_reload(&self) -> bool {
        let keys = self.read_keys();
        !keys.fresh && keys.reloading == 0
    }

    /// Marks the set of live hashes stale: it may have missed a change, and will be reloaded.
    /// Until then, hashes not in it are looked up on the client's budget.
    pub fn mark_keys_stale(&self) {
        let mut keys = self.write_keys();
        keys.fresh = false;
        keys.generation += 1;
    }

    /// Hashes in the set of live hashes, and the bytes it holds.
    pub fn key_set_size(&self) -> (usize, usize) {
        let keys = self.read_keys();
        (keys.set.len(), keys.set.heap_bytes())
    }

    /// Entries the cache `name` holds now (for the metrics).
    pub fn entries(&self, name: CacheName) -> usize {
        match name {
            CacheName::Auth => self.known.len(),
            CacheName::ProjectKeys => self.project_keys.len(),
            CacheName::UnknownKeys => self.unknown.len(),
            CacheName::Views => self.views.len(),
        }
    }

    /// What keeps the caches in sync with other writers, and whether it does now (for the
    /// metrics).
    pub fn sync_state(&self) -> SyncState {
        if self.lease_limited() {
            if self.trusted() {
                SyncState::Listening
            } else {
                SyncState::Lost
            }
        } else if self.watched.load(Ordering::Acquire) {
            SyncState::Watching
        } else {
            SyncState::None
        }
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        // Every change under this lock leaves the set whole: a panic cannot tear it.
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
            && self.project_keys.is_empty()
            && self.unknown.is_empty()
            && self.views.is_empty()
    }

    fn trusted(&self) -> bool {
        let lease = self.lease.load(Ordering::Acquire);
        lease == u64::MAX || u128::from(lease) > self.epoch.elapsed().as_nanos()
    }

    fn fresh(&self, cached_at: i64, now: i64) -> bool {
        now.saturating_sub(cached_at) < self.ttl_secs
    }

    fn ticket(&self) -> FillTicket {
        FillTicket(self.sequence.load(Ordering::Acquire))
    }

    fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn stripe(&self, key_id: &str) -> usize {
        (self.hasher.hash_one(key_id) as usize) & (STRIPES - 1)
    }

    /// Indexes a key being cached under `digest`: by id, by owning user and by project (the
    /// indexes let invalidations drop entries without a scan). Evicted keys leave their index
    /// entries behind; an index that has grown to twice the cache is pruned (amortised: one
    /// pass per `capacity` fills at most).
    fn index(
        &self,
        guarded: &mut Guarded,
        key_id: &str,
        digest: KeyDigest,
        user_id: Option<&str>,
        project_id: Option<&str>,
    ) {
        if let Some(previous) = guarded.digests.insert(key_id.to_owned(), digest)
            && previous != digest
        {
            self.known.remove(&previous);
            self.project_keys.remove(&previous);
        }
        if let Some(user_id) = user_id {
            let of_owner = guarded.by_owner.entry(user_id.to_owned()).or_default();
            if !of_owner.contains(&digest) {
                of_owner.push(digest);
                guarded.by_owner_len += 1;
            }
        }
        if let Some(project_id) = project_id {
            let of_project = guarded.by_project.entry(project_id.to_owned()).or_default();
            if !of_project.contains(&digest) {
                of_project.push(digest);
                guarded.by_project_len += 1;
            }
        }
        let cached = |digest: &KeyDigest| {
            self.known.peek(digest).is_some() || self.project_keys.peek(digest).is_some()
        };
        if guarded.digests.len() > 2 * self.capacity {
            guarded.digests.retain(|_, digest| cached(digest));
        }
        if guarded.by_owner_len > 2 * self.capacity {
            guarded.by_owner.retain(|_, digests| {
                digests.retain(cached);
                !digests.is_empty()
            });
            guarded.by_owner_len = guarded.by_owner.values().map(Vec::len).sum();
        }
        if guarded.by_project_len > 2 * self.capacity {
            guarded.by_project.retain(|_, digests| {
                digests.retain(cached);
                !digests.is_empty()
            });
            guarded.by_project_len = guarded.by_project.values().map(Vec::len).sum();
        }
    }

    /// Runs `insert` with the guard held, unless caching is off or the entry of `key_id` (or,
    /// with `None`, the unknown-hash cache) was invalidated after `ticket` was issued.
    fn admit(&self, ticket: FillTicket, key_id: Option<&str>, insert: impl FnOnce(&mut Guarded)) {
        let mut guarded = self.lock();
        let stamp = match key_id {
            Some(key_id) => guarded.key_stamps[self.stripe(key_id)],
            None => guarded.unknown_stamp,
        };
        let current = stamp.max(guarded.all_stamp) <= ticket.0;
        if current && self.ttl_secs > 0 && self.trusted() {
            insert(&mut guarded);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Guarded> {
        // Every change under this lock is a plain store: a panic elsewhere cannot leave it
        // inconsistent.
        self.guarded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An empty bounded cache of `capacity` entries, counting its evictions as `name`'s.
fn bounded<K: Eq + std::hash::Hash, V: Clone>(capacity: usize, name: CacheName) -> Bounded<K, V> {
    Bounded::with(
        capacity,
        capacity as u64,
        UnitWeighter,
        DefaultHashBuilder::default(),
        Evictions(name),
    )
}

/// Counts the entries a cache drops to make room (not those removed or cleared).
#[derive(Clone, Copy, Debug)]
pub struct Evictions(CacheName);

impl<K, V> Lifecycle<K, V> for Evictions {
    type RequestState = ();

    fn begin_request(&self) {}

    fn on_evict(&self, _: &mut (), _: K, _: V) {
        crate::metrics::cache_evicted(self.0);
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("known", &self.known.len())
            .field("project_keys", &self.project_keys.len())
            .field("unknown", &self.unknown.len())
            .field("views", &self.views.len())
            .field("live_hashes", &self.read_keys().set.len())
            .field("ttl_secs", &self.ttl_secs)
            .field("trusted", &self.trusted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(prefixes: &[HashPrefix]) -> Cache {
        let cache = Cache::new(CacheOptions::default());
        cache.load_keys(KeySet::from_prefixes(prefixes), cache.keys_generation());
        cache
    }

    #[test]
    fn a_loaded_set_vouches_for_absent_hashes_until_marked_stale() {
        let cache = Cache::new(CacheOptions::default());
        assert_eq!(cache.presence(7), Presence::Unsure, "never loaded");
        let cache = loaded(&[7]);
        assert_eq!(cache.presence(7), Presence::Live);
        assert_eq!(cache.presence(8), Presence::Absent);
        cache.apply(&Invalidation::KeyCreated(8));
        cache.apply(&Invalidation::KeyDeleted(7));
        assert_eq!(cache.presence(8), Presence::Live);
        assert_eq!(cache.presence(7), Presence::Absent);

        cache.apply(&Invalidation::All);
        assert_eq!(
            cache.presence(8),
            Presence::Live,
            "a stale set still knows its hashes"
        );
        assert_eq!(cache.presence(7), Presence::Unsure);
        cache.load_keys(KeySet::from_prefixes(&[8]), cache.keys_generation());
        assert_eq!(cache.presence(7), Presence::Absent);
    }

    #[test]
    fn a_reload_that_raced_a_mark_stays_stale() {
        let cache = loaded(&[]);
        let generation = cache.keys_generation();
        cache.mark_keys_stale();
        cache.load_keys(KeySet::default(), generation);
        assert!(cache.keys_stale());
    }

    #[test]
    fn hashes_added_or_removed_while_a_reload_reads_the_table_survive_it() {
        let cache = std::sync::Arc::new(loaded(&[1, 2]));
        let during = std::sync::Arc::clone(&cache);
        // The table as read before key 3 was committed and after key 1 was deleted; key 3's
        // creation and key 2's deletion are applied while the read is under way.
        cache.set_key_loader(Box::new(move || {
            during.apply(&Invalidation::KeyCreated(3));
            during.apply(&Invalidation::KeyDeleted(2));
            Ok(KeySet::from_prefixes(&[2]))
        }));
        cache.reload_keys().unwrap();
        assert!(!cache.keys_stale(), "nothing marked the set stale");
        assert_eq!(cache.presence(3), Presence::Live, "created during the read");
        assert_eq!(
            cache.presence(2),
            Presence::Absent,
            "deleted during the read"
        );
        assert_eq!(
            cache.presence(1),
            Presence::Absent,
            "deleted before the read"
        );

        // Once no reload is in flight, changes are not kept for the next one.
        cache.apply(&Invalidation::KeyCreated(4));
        assert!(cache.read_keys().journal.is_empty());
    }

    #[test]
    fn a_load_begun_at_start_is_the_only_one_and_vouches_for_nothing_until_it_ends() {
        let cache = Cache::new(CacheOptions::default());
        cache.set_key_loader(Box::new(|| Ok(KeySet::from_prefixes(&[1]))));
        // Begun before the server is ready, finished in the background.
        let generation = cache.begin_reload();
        assert!(!cache.keys_loaded_once());
        assert!(
            !cache.keys_need_reload(),
            "a listener or reconciler must not start a second load meanwhile"
        );
        assert_eq!(
            cache.presence(1),
            Presence::Unsure,
            "a stored key is looked up"
        );
        assert_eq!(cache.presence(2), Presence::Unsure, "so is an invented one");
        // A key made while the tables are read is kept.
        cache.apply(&Invalidation::KeyCreated(5));
        cache.finish_reload(generation).unwrap();
        assert!(cache.keys_loaded_once());
        assert!(!cache.keys_need_reload());
        assert_eq!(cache.presence(1), Presence::Live);
        assert_eq!(cache.presence(5), Presence::Live);
        assert_eq!(cache.presence(2), Presence::Absent);

        // A load that fails leaves the set to be reloaded.
        cache.mark_keys_stale();
        let failing = Cache::new(CacheOptions::default());
        failing.set_key_loader(Box::new(|| Err("the database is away".into())));
        let generation = failing.begin_reload();
        assert!(failing.finish_reload(generation).is_err());
        assert!(!failing.keys_loaded_once());
        assert!(
            failing.keys_need_reload(),
            "the next listener ping or reconcile retries"
        );
        assert!(cache.keys_need_reload());
    }

    #[test]
    fn without_a_lease_or_in_doubt_absences_are_unsure() {
        let cache = loaded(&[1]);
        cache.renew_lease(Instant::now());
        assert_eq!(cache.presence(2), Presence::Unsure, "lease ran out");
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        assert_eq!(cache.presence(2), Presence::Absent);
        cache.doubt_key_set(true);
        assert_eq!(cache.presence(2), Presence::Unsure);
        assert_eq!(cache.presence(1), Presence::Live);
    }

    #[actix_web::test]
    async fn waiting_for_a_sync_ends_at_the_first_ping_that_started_after_the_request() {
        let cache = std::sync::Arc::new(loaded(&[]));
        let arrived = cache.instant();
        cache.synced_through(Instant::now() - Duration::from_secs(1));
        assert!(
            !cache
                .wait_for_sync_after(arrived, Duration::from_millis(50))
                .await,
            "a ping that started before the request does not count"
        );
        let pinger = std::sync::Arc::clone(&cache);
        let ping = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            pinger.synced_through(Instant::now());
        });
        let started = Instant::now();
        assert!(
            cache
                .wait_for_sync_after(arrived, Duration::from_secs(5))
                .await
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        ping.join().unwrap();
    }
}

//! In-process caches, so that authenticating a request needs no database round trip in steady
//! state, and neither does retrieving a key; and the listener that keeps them true.
//!
//! - [`auth`]: key hash → auth record (with the owner), and hashes the database does not know.
//!   A change to a user drops the records of all their keys.
//! - [`views`]: retrieved keys by id, with their rendered JSON.
//! - [`usage`]: `last_used_at` uses not yet written, overlaid on what is shown.
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

pub mod auth;
pub mod invalidation;
pub mod usage;
pub mod views;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache as Bounded;

pub use auth::{CachedKey, Lookup};
pub use views::CachedView;

use crate::domain::secret::KeyDigest;

/// Stamps that key ids hash onto (a power of two).
pub const STRIPES: usize = 1024;

/// What a change makes wrong in the caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// A key was made (or its hash rewritten): its hash may sit in the unknown-hash cache.
    KeyCreated,
    /// A key changed or was deleted: drop its auth record and its view.
    Key(String),
    /// A user changed or was deleted: drop the auth records of all their keys, and the views
    /// (which show the owner).
    User(String),
    /// The stored `last_used_at` of these keys moved: drop their views.
    Views(Vec<String>),
    /// Anything may have changed: drop everything.
    All,
}

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
    unknown: Bounded<KeyDigest, i64>,
    views: Bounded<String, std::sync::Arc<CachedView>>,
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
}

impl Cache {
    /// Empty caches, trusted for good (no listener is needed) until a lease is set.
    pub fn new(options: CacheOptions) -> Self {
        let capacity = options.capacity.max(1);
        Self {
            known: Bounded::new(capacity),
            unknown: Bounded::new(capacity),
            views: Bounded::new(capacity),
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
            }),
            hasher: RandomState::new(),
        }
    }

    /// Applies one invalidation.
    pub fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::KeyCreated => self.forget_unknown(),
            Invalidation::Key(key_id) => self.forget_key(key_id),
            Invalidation::User(user_id) => self.forget_owner(user_id),
            Invalidation::Views(key_ids) => self.forget_views(key_ids.iter().map(String::as_str)),
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
        }
        self.views.remove(key_id);
    }

    /// Drops the auth records of every key of the user `user_id`, and every view (views show
    /// the owner). Rare (a user was changed), so it also voids every fill in flight rather
    /// than track which of them read this user.
    pub fn forget_owner(&self, user_id: &str) {
        let mut guarded = self.lock();
        guarded.all_stamp = self.next_sequence();
        if let Some(digests) = guarded.by_owner.remove(user_id) {
            guarded.by_owner_len -= digests.len();
            for digest in &digests {
                self.known.remove(digest);
            }
        }
        self.views.clear();
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

    /// Empties every cache (the lease is unchanged).
    pub fn reset(&self) {
        let mut guarded = self.lock();
        guarded.all_stamp = self.next_sequence();
        guarded.digests.clear();
        guarded.by_owner.clear();
        guarded.by_owner_len = 0;
        self.known.clear();
        self.unknown.clear();
        self.views.clear();
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

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty() && self.unknown.is_empty() && self.views.is_empty()
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

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("known", &self.known.len())
            .field("unknown", &self.unknown.len())
            .field("views", &self.views.len())
            .field("ttl_secs", &self.ttl_secs)
            .field("trusted", &self.trusted())
            .finish()
    }
}

//! An in-process cache of the keys this replica has seen, so that authenticating a request
//! needs no database round trip in steady state, and neither does retrieving a key.
//!
//! Policy:
//! - Entries are keyed by the SHA-256 of the presented key and hold its auth record (id, owner,
//!   scopes, enabled, expiry). Expiry is judged against the clock on every request, cached or
//!   not, so a key stops working the second it expires.
//! - Hashes the database does not know are remembered in a second, separate cache, so a flood of
//!   well-formed but invented keys reaches the database once per hash per TTL. Malformed keys
//!   never get this far.
//! - Retrieved keys (the row with its owner, as `GET .../admin_api_keys/{id}` shows it) are
//!   cached by id in a third cache under the same invalidation. Their `last_used_at` may lag
//!   other replicas' uses by up to the TTL on top of the usage flush interval; this replica's
//!   own uses are overlaid fresh, as everywhere.
//! - Every cache is bounded by entry count (S3-FIFO eviction); nothing here grows with the
//!   number of stored keys.
//! - A change to a key (delete, disable, scope change, expiry, rotation) drops its entry: at once
//!   on the replica that made it, and on every other replica through PostgreSQL `NOTIFY` (see
//!   [`crate::invalidation`]). A new key empties the unknown-hash cache. Entries also expire
//!   after a TTL: the backstop for changes made behind the service's back, not the mechanism.
//! - With a listener, the cache is trusted only under a lease that the listener renews each
//!   time it proves its connection alive; a listener that died quietly, or is stuck, lets the
//!   lease run out within a second and the cache is bypassed. A listener that reconnects
//!   empties the cache first, because notifications sent in between are lost.
//! - A fill whose database read may predate an invalidation is discarded (a generation counter
//!   moved), so a slow lookup cannot put back the record a change just removed.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use quick_cache::sync::Cache;

use crate::models::admin_api_key::{AuthRecord, KeyWithOwner};
use crate::scopes::Scopes;

/// SHA-256 of a presented key.
pub type KeyDigest = [u8; 32];

/// What authentication needs to know about a key, as cached.
#[derive(Debug)]
pub struct CachedKey {
    pub key_id: String,
    pub owner_id: String,
    pub scopes: Scopes,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    cached_at: i64,
    /// The latest second this key was seen in, so usage is recorded once per key per second.
    last_seen: AtomicI64,
}

impl CachedKey {
    fn new(record: AuthRecord, now: i64) -> Self {
        Self {
            scopes: Scopes::from_db(&record.scopes),
            key_id: record.id,
            owner_id: record.owner_id,
            enabled: record.enabled,
            expires_at: record.expires_at,
            cached_at: now,
            last_seen: AtomicI64::new(i64::MIN),
        }
    }

    /// Notes a use at `now`; true the first time in each second.
    pub fn first_use_in(&self, now: i64) -> bool {
        self.last_seen.fetch_max(now, Ordering::Relaxed) < now
    }
}

/// The answer of [`AuthCache::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// The key is known.
    Known(Arc<CachedKey>),
    /// The database recently did not know this hash.
    Unknown,
    /// Ask the database, then hand the answer and this ticket to [`AuthCache::fill`].
    Miss(FillTicket),
}

/// A key as `retrieve` shows it, when it was read: the row and its rendered JSON.
#[derive(Debug)]
pub struct CachedView {
    pub key: KeyWithOwner,
    /// The response body with the stored `last_used_at`.
    pub body: Bytes,
    cached_at: i64,
}

/// The invalidation generation a lookup missed at.
#[derive(Debug)]
pub struct FillTicket(u64);

/// Sizes and lifetime of the cache.
#[derive(Clone, Copy, Debug)]
pub struct AuthCacheOptions {
    /// Most keys (and, separately, most unknown hashes) held.
    pub capacity: usize,
    /// How long an entry is trusted without a notification; zero disables caching.
    pub ttl: Duration,
}

impl Default for AuthCacheOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(30),
        }
    }
}

/// The cache; see the module docs for its policy.
pub struct AuthCache {
    known: Cache<KeyDigest, Arc<CachedKey>>,
    unknown: Cache<KeyDigest, i64>,
    views: Cache<String, Arc<CachedView>>,
    ttl_secs: i64,
    /// Until when (nanoseconds after `epoch`) the cache may be used; `u64::MAX` without a
    /// listener. Zero while invalidations may be missed.
    lease: AtomicU64,
    epoch: Instant,
    /// Moves on every invalidation; only changed with `invalidating` held.
    generation: AtomicU64,
    /// Orders fills against invalidations; never taken on a hit.
    invalidating: Mutex<()>,
}

impl AuthCache {
    /// An empty cache, trusted for good (no listener is needed) until a lease is set.
    pub fn new(options: AuthCacheOptions) -> Self {
        let capacity = options.capacity.max(1);
        Self {
            known: Cache::new(capacity),
            unknown: Cache::new(capacity),
            views: Cache::new(capacity),
            ttl_secs: i64::try_from(options.ttl.as_secs()).unwrap_or(i64::MAX),
            lease: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
            invalidating: Mutex::new(()),
        }
    }

    /// What the cache knows about `digest` at `now`.
    pub fn lookup(&self, digest: &KeyDigest, now: i64) -> Lookup {
        if self.trusted() {
            if let Some(key) = self.known.get(digest)
                && self.fresh(key.cached_at, now)
            {
                return Lookup::Known(key);
            }
            if let Some(cached_at) = self.unknown.get(digest)
                && self.fresh(cached_at, now)
            {
                return Lookup::Unknown;
            }
        }
        Lookup::Miss(FillTicket(self.generation.load(Ordering::Acquire)))
    }

    /// Caches what the database said about `digest` (unless an invalidation happened since the
    /// ticket was issued) and returns the key, if it exists.
    pub fn fill(
        &self,
        digest: KeyDigest,
        ticket: FillTicket,
        record: Option<AuthRecord>,
        now: i64,
    ) -> Option<Arc<CachedKey>> {
        let key = record.map(|record| Arc::new(CachedKey::new(record, now)));
        self.admit(ticket, || match &key {
            Some(key) => {
                self.unknown.remove(&digest);
                self.known.insert(digest, Arc::clone(key));
            }
            None => self.unknown.insert(digest, now),
        });
        key
    }

    /// The key `key_id` as last read, if cached and fresh at `now`; otherwise a ticket for
    /// [`AuthCache::fill_view`].
    pub fn view(&self, key_id: &str, now: i64) -> Result<Arc<CachedView>, FillTicket> {
        if self.trusted()
            && let Some(view) = self.views.get(key_id)
            && self.fresh(view.cached_at, now)
        {
            return Ok(view);
        }
        Err(FillTicket(self.generation.load(Ordering::Acquire)))
    }

    /// Caches a key read for `retrieve` (unless an invalidation happened since the ticket was
    /// issued). Absent keys are not remembered.
    pub fn fill_view(
        &self,
        ticket: FillTicket,
        found: Option<(KeyWithOwner, Bytes)>,
        now: i64,
    ) -> Option<Arc<CachedView>> {
        let (key, body) = found?;
        let view = Arc::new(CachedView {
            key,
            body,
            cached_at: now,
        });
        self.admit(ticket, || {
            self.views.insert(view.key.0.id.clone(), Arc::clone(&view));
        });
        Some(view)
    }

    /// Runs `insert` unless the cache is off or was invalidated after `ticket` was issued.
    fn admit(&self, ticket: FillTicket, insert: impl FnOnce()) {
        let _guard = self.lock();
        let current = self.generation.load(Ordering::Acquire) == ticket.0;
        if current && self.ttl_secs > 0 && self.trusted() {
            insert();
        }
    }

    /// Drops the entry of the key `key_id`: it was changed or deleted.
    pub fn forget_key(&self, key_id: &str) {
        let _guard = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.known.retain(|_, key| key.key_id != key_id);
        self.views.remove(key_id);
    }

    /// Drops the cached views of `key_ids`: their `last_used_at` was just written, and the
    /// pending use that covered it is about to be forgotten.
    pub fn forget_views<'a>(&self, key_ids: impl IntoIterator<Item = &'a str>) {
        let _guard = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for key_id in key_ids {
            self.views.remove(key_id);
        }
    }

    /// Drops the cached view of `key_id` if the database has since shown a later
    /// `last_used_at` (written by another replica's flush), so a retrieve never shows an older
    /// value than a list on this replica just did.
    pub fn note_stored_use(&self, key_id: &str, last_used_at: Option<i64>) {
        if let Some(view) = self.views.peek(key_id)
            && view.key.0.last_used_at < last_used_at
        {
            self.forget_views([key_id]);
        }
    }

    /// Empties the unknown-hash cache: a key was created, and its hash may be in there.
    pub fn forget_unknown(&self) {
        let _guard = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.unknown.clear();
    }

    /// Empties the cache (its lease is unchanged).
    pub fn reset(&self) {
        let _guard = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.known.clear();
        self.unknown.clear();
        self.views.clear();
    }

    /// Stops using the cache, and empties it, until the lease is renewed.
    pub fn distrust(&self) {
        self.lease.store(0, Ordering::Release);
        self.reset();
    }

    /// Lets the cache be used until `until`.
    pub fn renew_lease(&self, until: Instant) {
        let nanos = until.saturating_duration_since(self.epoch).as_nanos();
        self.lease.store(
            u64::try_from(nanos).unwrap_or(u64::MAX - 1),
            Ordering::Release,
        );
    }

    fn trusted(&self) -> bool {
        let lease = self.lease.load(Ordering::Acquire);
        lease == u64::MAX || u128::from(lease) > self.epoch.elapsed().as_nanos()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty() && self.unknown.is_empty() && self.views.is_empty()
    }

    fn fresh(&self, cached_at: i64, now: i64) -> bool {
        now.saturating_sub(cached_at) < self.ttl_secs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.invalidating
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("known", &self.known.len())
            .field("unknown", &self.unknown.len())
            .field("views", &self.views.len())
            .field("ttl_secs", &self.ttl_secs)
            .field("trusted", &self.trusted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AuthRecord {
        AuthRecord {
            id: id.to_owned(),
            owner_id: "user_1".to_owned(),
            expires_at: None,
            scopes: "admin_api_keys.read".to_owned(),
            enabled: true,
        }
    }

    fn cache(ttl_secs: u64) -> AuthCache {
        AuthCache::new(AuthCacheOptions {
            capacity: 100,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    fn ticket(cache: &AuthCache, digest: &KeyDigest, now: i64) -> FillTicket {
        match cache.lookup(digest, now) {
            Lookup::Miss(ticket) => ticket,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    #[test]
    fn a_filled_key_is_served_until_its_ttl_runs_out() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        assert!(matches!(cache.lookup(&[1; 32], 129), Lookup::Known(k) if k.key_id == "key_a"));
        assert!(matches!(cache.lookup(&[1; 32], 130), Lookup::Miss(_)));
    }

    #[test]
    fn unknown_hashes_are_remembered_and_forgotten_when_a_key_is_created() {
        let cache = cache(30);
        let t = ticket(&cache, &[2; 32], 100);
        assert!(cache.fill([2; 32], t, None, 100).is_none());
        assert!(matches!(cache.lookup(&[2; 32], 101), Lookup::Unknown));
        cache.forget_unknown();
        assert!(matches!(cache.lookup(&[2; 32], 101), Lookup::Miss(_)));
    }

    #[test]
    fn forgetting_a_key_drops_only_that_key() {
        let cache = cache(30);
        for (byte, id) in [(1, "key_a"), (2, "key_b")] {
            let t = ticket(&cache, &[byte; 32], 100);
            cache.fill([byte; 32], t, Some(record(id)), 100);
        }
        cache.forget_key("key_a");
        assert!(matches!(cache.lookup(&[1; 32], 100), Lookup::Miss(_)));
        assert!(matches!(cache.lookup(&[2; 32], 100), Lookup::Known(_)));
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_not_cached() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        // The database was read before this change committed; the record may be stale.
        cache.forget_key("key_a");
        let served = cache.fill([1; 32], t, Some(record("key_a")), 100);
        assert!(served.is_some(), "the caller still gets the record it read");
        assert!(matches!(cache.lookup(&[1; 32], 100), Lookup::Miss(_)));
    }

    #[test]
    fn a_distrusted_cache_always_misses_and_caches_nothing() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        cache.distrust();
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        assert!(cache.is_empty());
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        assert!(matches!(cache.lookup(&[1; 32], 100), Lookup::Known(_)));
    }

    #[test]
    fn an_expired_lease_bypasses_the_cache_without_emptying_it() {
        let cache = cache(30);
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        cache.renew_lease(Instant::now());
        assert!(matches!(cache.lookup(&[1; 32], 100), Lookup::Miss(_)));
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        assert!(matches!(cache.lookup(&[1; 32], 100), Lookup::Known(_)));
    }

    #[test]
    fn a_zero_ttl_disables_caching() {
        let cache = cache(0);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, Some(record("key_a")), 100);
        assert!(cache.is_empty());
    }

    #[test]
    fn usage_is_noted_once_per_second() {
        let key = CachedKey::new(record("key_a"), 100);
        assert!(key.first_use_in(100));
        assert!(!key.first_use_in(100));
        assert!(key.first_use_in(101));
        assert!(
            !key.first_use_in(100),
            "an older second does not count again"
        );
    }
}

//! The auth cache: who each recently presented key is.
//!
//! Entries are keyed by the SHA-256 of the presented key and hold its auth record (id, owner,
//! scopes, enabled, expiry). Expiry is judged against the clock on every request, cached or
//! not, so a key stops working the second it expires. The owner (role, enabled) is part of the
//! entry: a change to a user drops the entries of all their keys (see `Cache::forget_owner`).
//! A hash that is not in the set of live hashes (`keyset`) never gets here as a lookup; hashes
//! the database did not know when asked (one in the set but deleted meanwhile, or any while the
//! set cannot vouch for absences) are remembered separately, so retries reach the database
//! once per hash per TTL. Malformed keys never get this far.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::web::Bytes;

use super::headers::{self, VerdictHeaders};
use super::{Cache, FillTicket};
use crate::domain::secret::KeyDigest;
use crate::domain::{McpPolicy, McpPresets, Permissions, Scope, Scopes};
use crate::metrics::{self, CacheName};
use crate::models::admin_api_key::AuthRecord;
use crate::models::user::User;

/// What authentication needs to know about a key, as cached.
#[derive(Debug)]
pub struct CachedKey {
    pub key_id: String,
    /// The owner as stored when the key was looked up.
    pub owner: User,
    /// The key's effective scopes: its own, within its owner's role.
    pub scopes: Scopes,
    /// The key's effective permissions, for the operator's own services: its own, within its
    /// owner's permission ceiling.
    pub permissions: Permissions,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    /// The key's effective MCP policy (its preset resolved), for MCP checks.
    pub mcp: McpPolicy,
    /// What forward auth answers for it, rendered at fill.
    pub headers: VerdictHeaders,
    /// What introspection answers for it (for an admin key, all but its `key` object, which
    /// shows the latest use), rendered by the first introspection of this entry and kept with
    /// it, so it is dropped with the entry.
    pub introspection: OnceLock<Bytes>,
    cached_at: i64,
    /// The latest second this key was seen in, so usage is recorded once per key per second.
    last_seen: AtomicI64,
}

impl CachedKey {
    pub fn new(record: AuthRecord, owner: User, now: i64, presets: &McpPresets) -> Self {
        let scopes = record.scopes.intersect(owner.role().ceiling());
        let permissions = record.permissions.within(&owner.permissions);
        let scope_names: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
        let headers = VerdictHeaders::render([
            (headers::KEY_ID, &record.id),
            (headers::OWNER_ID, &owner.id),
            (headers::OWNER_TYPE, "user"),
            (headers::SCOPES, &scope_names.join(" ")),
            (headers::PERMISSIONS, &permissions.to_db()),
        ]);
        Self {
            mcp: record.mcp.effective(presets),
            scopes,
            permissions,
            headers,
            introspection: OnceLock::new(),
            key_id: record.id,
            owner,
            enabled: record.enabled,
            expires_at: record.expires_at,
            cached_at: now,
            last_seen: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether the key can do anything at all: some effective scope or permission. One that
    /// cannot (its owner's role and ceiling leave it nothing) is refused downstream.
    pub fn has_access(&self) -> bool {
        !self.scopes.is_empty() || !self.permissions.is_empty()
    }

    /// Notes a use at `now`; true the first time in each second.
    pub fn first_use_in(&self, now: i64) -> bool {
        self.last_seen.fetch_max(now, Ordering::Relaxed) < now
    }
}

/// The answer of [`Cache::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// The key is known.
    Known(Arc<CachedKey>),
    /// The database recently did not know this hash.
    Unknown,
    /// Ask the database, then hand the answer and this ticket to [`Cache::fill`].
    Miss(FillTicket),
}

impl Cache {
    /// What the cache knows about `digest` at `now`.
    pub fn lookup(&self, digest: &KeyDigest, now: i64) -> Lookup {
        if self.trusted() {
            if let Some(key) = self.known.get(digest)
                && self.fresh(key.cached_at, now)
            {
                metrics::cache_hit(CacheName::Auth);
                return Lookup::Known(key);
            }
            metrics::cache_miss(CacheName::Auth);
            if let Some(cached_at) = self.unknown.get(digest)
                && self.fresh(cached_at, now)
            {
                metrics::cache_hit(CacheName::UnknownKeys);
                return Lookup::Unknown;
            }
            metrics::cache_miss(CacheName::UnknownKeys);
        } else {
            metrics::cache_miss(CacheName::Auth);
        }
        Lookup::Miss(self.ticket())
    }

    /// Caches what the database said about `digest` (unless that entry was invalidated since
    /// the ticket was issued) and returns the key, if it exists.
    pub fn fill(
        &self,
        digest: KeyDigest,
        ticket: FillTicket,
        found: Option<(AuthRecord, User)>,
        now: i64,
    ) -> Option<Arc<CachedKey>> {
        let Some((record, owner)) = found else {
            self.admit(ticket, None, |_| self.unknown.insert(digest, now));
            return None;
        };
        let key = Arc::new(CachedKey::new(record, owner, now, self.mcp_presets()));
        self.admit(ticket, Some(&key.key_id), |guarded| {
            self.unknown.remove(&digest);
            self.index(guarded, &key.key_id, digest, Some(&key.owner.id), None);
            self.known.insert(digest, Arc::clone(&key));
        });
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cache::CacheOptions;

    fn found(id: &str) -> Option<(AuthRecord, User)> {
        Some((
            AuthRecord {
                id: id.to_owned(),
                owner_id: "user_1".to_owned(),
                expires_at: None,
                scopes: [crate::domain::Scope::AdminApiKeysRead]
                    .into_iter()
                    .collect(),
                enabled: true,
                permissions: Permissions::default(),
                mcp: McpPolicy::default(),
            },
            User {
                id: "user_1".to_owned(),
                name: "Owner".to_owned(),
                email: None,
                role: "owner".to_owned(),
                created_at: 0,
                enabled: true,
                permissions: Permissions::all(),
                first_name: None,
                last_name: None,
                phone_number: None,
            },
        ))
    }

    fn owned_by(id: &str, owner: &str, role: &str) -> Option<(AuthRecord, User)> {
        let (mut record, mut user) = found(id).unwrap();
        record.owner_id = owner.to_owned();
        record.scopes = crate::domain::Scopes::all();
        user.id = owner.to_owned();
        user.role = role.to_owned();
        Some((record, user))
    }

    fn cache(ttl_secs: u64) -> Cache {
        Cache::new(CacheOptions {
            capacity: 100,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    fn ticket(cache: &Cache, digest: &KeyDigest, now: i64) -> FillTicket {
        match cache.lookup(digest, now) {
            Lookup::Miss(ticket) => ticket,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    fn known(cache: &Cache, digest: &KeyDigest) -> bool {
        matches!(cache.lookup(digest, 100), Lookup::Known(_))
    }

    #[test]
    fn a_filled_key_is_served_until_its_ttl_runs_out() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
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
            cache.fill([byte; 32], t, found(id), 100);
        }
        cache.forget_key("key_a");
        assert!(!known(&cache, &[1; 32]));
        assert!(known(&cache, &[2; 32]));
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_of_its_key_is_not_cached() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        // The database was read before this change committed; the record may be stale.
        cache.forget_key("key_a");
        let served = cache.fill([1; 32], t, found("key_a"), 100);
        assert!(served.is_some(), "the caller still gets the record it read");
        assert!(!known(&cache, &[1; 32]));
    }

    #[test]
    fn invalidating_other_keys_or_unknown_hashes_does_not_void_a_fill() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        // Pick an id on another stripe than key_a, so the test does not depend on the hasher.
        let other = (0..)
            .map(|n| format!("key_{n}"))
            .find(|id| cache.stripe(id) != cache.stripe("key_a"))
            .unwrap();
        cache.forget_key(&other);
        cache.forget_unknown();
        cache.fill([1; 32], t, found("key_a"), 100);
        assert!(known(&cache, &[1; 32]));

        let t = ticket(&cache, &[2; 32], 100);
        cache.forget_key("key_a");
        cache.fill([2; 32], t, None, 100);
        assert!(matches!(cache.lookup(&[2; 32], 100), Lookup::Unknown));
    }

    #[test]
    fn an_unknown_hash_fill_that_raced_a_create_is_not_cached() {
        let cache = cache(30);
        let t = ticket(&cache, &[2; 32], 100);
        cache.forget_unknown();
        cache.fill([2; 32], t, None, 100);
        assert!(matches!(cache.lookup(&[2; 32], 100), Lookup::Miss(_)));
    }

    #[test]
    fn the_id_index_stays_bounded_as_keys_are_evicted() {
        let cache = cache(30);
        for n in 0..1_000u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            let t = ticket(&cache, &digest, 100);
            cache.fill(digest, t, found(&format!("key_{n}")), 100);
        }
        assert!(cache.lock().digests.len() <= 2 * cache.capacity + 1);
        // A key still cached is still found by id.
        let mut last = [0; 32];
        last[..4].copy_from_slice(&999u32.to_le_bytes());
        assert!(known(&cache, &last));
        cache.forget_key("key_999");
        assert!(!known(&cache, &last));
    }

    #[test]
    fn a_distrusted_cache_always_misses_and_caches_nothing() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
        cache.distrust();
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
        assert!(cache.is_empty());
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
        assert!(known(&cache, &[1; 32]));
    }

    #[test]
    fn an_expired_lease_bypasses_the_cache_without_emptying_it() {
        let cache = cache(30);
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
        cache.renew_lease(Instant::now());
        assert!(!known(&cache, &[1; 32]));
        cache.renew_lease(Instant::now() + Duration::from_secs(60));
        assert!(known(&cache, &[1; 32]));
    }

    #[test]
    fn forgetting_an_owner_drops_every_key_of_theirs_and_no_other() {
        let cache = cache(30);
        for (byte, id, owner) in [
            (1, "key_a", "user_a"),
            (2, "key_b", "user_a"),
            (3, "key_c", "user_c"),
        ] {
            let t = ticket(&cache, &[byte; 32], 100);
            cache.fill([byte; 32], t, owned_by(id, owner, "owner"), 100);
        }
        cache.forget_owner("user_a");
        assert!(!known(&cache, &[1; 32]));
        assert!(!known(&cache, &[2; 32]));
        assert!(known(&cache, &[3; 32]));
    }

    #[test]
    fn a_fill_that_raced_a_change_of_its_owner_is_not_cached() {
        let cache = cache(30);
        let t = ticket(&cache, &[1; 32], 100);
        cache.forget_owner("user_a");
        cache.fill([1; 32], t, owned_by("key_a", "user_a", "owner"), 100);
        assert!(!known(&cache, &[1; 32]));
    }

    #[test]
    fn a_readers_key_holds_only_the_read_scopes_it_was_granted() {
        let (record, owner) = owned_by("key_a", "user_a", "reader").unwrap();
        let key = CachedKey::new(record, owner, 100, &McpPresets::default());
        assert_eq!(key.scopes, crate::domain::Role::Reader.ceiling());
        let (record, owner) = owned_by("key_a", "user_a", "owner").unwrap();
        assert_eq!(
            CachedKey::new(record, owner, 100, &McpPresets::default()).scopes,
            crate::domain::Scopes::all()
        );
    }

    #[test]
    fn a_keys_permissions_count_only_within_its_owners_ceiling() {
        let (mut record, mut owner) = owned_by("key_a", "user_a", "reader").unwrap();
        record.permissions = ["billing:*".to_owned(), "ops".to_owned()]
            .into_iter()
            .collect();
        owner.permissions = ["billing:read".to_owned()].into_iter().collect();
        let key = CachedKey::new(record.clone(), owner.clone(), 100, &McpPresets::default());
        assert_eq!(key.permissions.to_db(), "billing:read");
        owner.permissions = Permissions::default();
        let key = CachedKey::new(record, owner, 100, &McpPresets::default());
        assert!(key.permissions.is_empty());
        assert!(key.has_access(), "it still holds the read scopes");
    }

    #[test]
    fn a_zero_ttl_disables_caching() {
        let cache = cache(0);
        let t = ticket(&cache, &[1; 32], 100);
        cache.fill([1; 32], t, found("key_a"), 100);
        assert!(cache.is_empty());
    }

    #[test]
    fn usage_is_noted_once_per_second() {
        let (record, owner) = found("key_a").unwrap();
        let key = CachedKey::new(record, owner, 100, &McpPresets::default());
        assert!(key.first_use_in(100));
        assert!(!key.first_use_in(100));
        assert!(key.first_use_in(101));
        assert!(
            !key.first_use_in(100),
            "an older second does not count again"
        );
    }
}

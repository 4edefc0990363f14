//! The project key cache: who each recently presented project key (`sk-proj-`, `sk-svcacct-`)
//! is, and whether its owner may use the project now.
//!
//! Entries hold the key's auth record as read on a miss (`project_api_key::find_auth_record`):
//! project, owner, scopes, enabled, expiry, and the owner's standing (project not archived,
//! member still in it and enabled). Expiry is judged against the clock on every request; the
//! standing is dropped with the entry by the invalidations that change it: `Project` (archive,
//! member removed or changed, service account deleted), `User` (a member changed, disabled or
//! deleted) and `Key` (the key itself). Unknown hashes share the admin keys' negative cache.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::web::Bytes;

use super::headers::{self, VerdictHeaders};
use super::{Cache, FillTicket};
use crate::domain::secret::KeyDigest;
use crate::domain::{McpPolicy, McpPresets, Permissions};
use crate::metrics::{self, CacheName};
use crate::models::project_api_key::{KeyOwner, ProjectAuthRecord};

/// What verifying a project key needs to know, as cached.
#[derive(Debug)]
pub struct CachedProjectKey {
    pub key_id: String,
    pub project_id: String,
    pub owner: KeyOwner,
    /// The key's scopes: free-form strings for the services behind the proxy.
    pub scopes: Permissions,
    /// `scopes` space-separated, as forward auth sends them (rendered once, at fill).
    pub scopes_header: String,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Whether the owner may use the project (see `ProjectAuthRecord`).
    pub owner_has_access: bool,
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

impl CachedProjectKey {
    pub fn new(record: ProjectAuthRecord, now: i64, presets: &McpPresets) -> Self {
        let scopes_header = record.scopes.to_db();
        let headers = VerdictHeaders::render([
            (headers::KEY_ID, &record.id),
            (headers::OWNER_ID, record.owner.id()),
            (headers::OWNER_TYPE, record.owner.kind()),
            (headers::PROJECT_ID, &record.project_id),
            (headers::SCOPES, &scopes_header),
            (headers::PERMISSIONS, &scopes_header),
        ]);
        Self {
            mcp: record.mcp.effective(presets),
            headers,
            introspection: OnceLock::new(),
            scopes_header,
            key_id: record.id,
            project_id: record.project_id,
            owner: record.owner,
            scopes: record.scopes,
            enabled: record.enabled,
            expires_at: record.expires_at,
            created_at: record.created_at,
            owner_has_access: record.owner_has_access,
            cached_at: now,
            last_seen: AtomicI64::new(i64::MIN),
        }
    }

    /// Notes a use at `now`; true the first time in each second.
    pub fn first_use_in(&self, now: i64) -> bool {
        self.last_seen.fetch_max(now, Ordering::Relaxed) < now
    }
}

/// The answer of [`Cache::lookup_project`].
#[derive(Debug)]
pub enum ProjectLookup {
    /// The key is known.
    Known(Arc<CachedProjectKey>),
    /// The database recently did not know this hash.
    Unknown,
    /// Ask the database, then hand the answer and this ticket to [`Cache::fill_project`].
    Miss(FillTicket),
}

impl Cache {
    /// What the cache knows about the project key `digest` at `now`.
    pub fn lookup_project(&self, digest: &KeyDigest, now: i64) -> ProjectLookup {
        if self.trusted() {
            if let Some(key) = self.project_keys.get(digest)
                && self.fresh(key.cached_at, now)
            {
                metrics::cache_hit(CacheName::ProjectKeys);
                return ProjectLookup::Known(key);
            }
            metrics::cache_miss(CacheName::ProjectKeys);
            if let Some(cached_at) = self.unknown.get(digest)
                && self.fresh(cached_at, now)
            {
                metrics::cache_hit(CacheName::UnknownKeys);
                return ProjectLookup::Unknown;
            }
            metrics::cache_miss(CacheName::UnknownKeys);
        } else {
            metrics::cache_miss(CacheName::ProjectKeys);
        }
        ProjectLookup::Miss(self.ticket())
    }

    /// Caches what the database said about the project key `digest` (unless that entry was
    /// invalidated since the ticket was issued) and returns the key, if it exists.
    pub fn fill_project(
        &self,
        digest: KeyDigest,
        ticket: FillTicket,
        found: Option<ProjectAuthRecord>,
        now: i64,
    ) -> Option<Arc<CachedProjectKey>> {
        let Some(record) = found else {
            self.admit(ticket, None, |_| self.unknown.insert(digest, now));
            return None;
        };
        let key = Arc::new(CachedProjectKey::new(record, now, self.mcp_presets()));
        self.admit(ticket, Some(&key.key_id), |guarded| {
            self.unknown.remove(&digest);
            let user = match &key.owner {
                KeyOwner::User(user_id) => Some(user_id.as_str()),
                KeyOwner::ServiceAccount(_) => None,
            };
            self.index(guarded, &key.key_id, digest, user, Some(&key.project_id));
            self.project_keys.insert(digest, Arc::clone(&key));
        });
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cache::{CacheOptions, Invalidation};

    fn record(id: &str, project: &str, owner: KeyOwner) -> ProjectAuthRecord {
        ProjectAuthRecord {
            id: id.to_owned(),
            project_id: project.to_owned(),
            owner,
            scopes: ["chat:*".to_owned()].into_iter().collect(),
            enabled: true,
            expires_at: None,
            created_at: 1,
            owner_has_access: true,
            mcp: McpPolicy::default(),
        }
    }

    fn cache() -> Cache {
        Cache::new(CacheOptions {
            capacity: 100,
            ttl: Duration::from_secs(30),
        })
    }

    fn fill(cache: &Cache, byte: u8, record: ProjectAuthRecord) {
        let ProjectLookup::Miss(ticket) = cache.lookup_project(&[byte; 32], 100) else {
            panic!("expected a miss");
        };
        cache.fill_project([byte; 32], ticket, Some(record), 100);
    }

    fn known(cache: &Cache, byte: u8) -> bool {
        matches!(
            cache.lookup_project(&[byte; 32], 100),
            ProjectLookup::Known(_)
        )
    }

    #[test]
    fn invalidating_a_project_drops_its_keys_and_no_other() {
        let cache = cache();
        fill(
            &cache,
            1,
            record("key_a", "proj_a", KeyOwner::User("user_a".into())),
        );
        fill(
            &cache,
            2,
            record("key_b", "proj_a", KeyOwner::ServiceAccount("svc_a".into())),
        );
        fill(
            &cache,
            3,
            record("key_c", "proj_c", KeyOwner::User("user_a".into())),
        );
        cache.apply(&Invalidation::Project("proj_a".into()));
        assert!(!known(&cache, 1));
        assert!(!known(&cache, 2));
        assert!(known(&cache, 3));
    }

    #[test]
    fn invalidating_a_user_drops_the_project_keys_they_own() {
        let cache = cache();
        fill(
            &cache,
            1,
            record("key_a", "proj_a", KeyOwner::User("user_a".into())),
        );
        fill(
            &cache,
            2,
            record("key_b", "proj_a", KeyOwner::ServiceAccount("svc_a".into())),
        );
        cache.apply(&Invalidation::User("user_a".into()));
        assert!(!known(&cache, 1));
        assert!(known(&cache, 2));
        cache.apply(&Invalidation::Key("key_b".into()));
        assert!(!known(&cache, 2));
    }

    #[test]
    fn a_fill_that_raced_a_project_change_is_not_cached() {
        let cache = cache();
        let ProjectLookup::Miss(ticket) = cache.lookup_project(&[1; 32], 100) else {
            panic!("expected a miss");
        };
        cache.apply(&Invalidation::Project("proj_a".into()));
        let served = cache.fill_project(
            [1; 32],
            ticket,
            Some(record("key_a", "proj_a", KeyOwner::User("user_a".into()))),
            100,
        );
        assert!(served.is_some());
        assert!(!known(&cache, 1));
    }

    #[test]
    fn an_admin_lookup_never_sees_a_project_key() {
        let cache = cache();
        fill(
            &cache,
            1,
            record("key_a", "proj_a", KeyOwner::User("user_a".into())),
        );
        assert!(matches!(
            cache.lookup(&[1; 32], 100),
            crate::cache::Lookup::Miss(_)
        ));
    }
}

//! What every handler shares. A leaf: it holds the pieces, and no module it imports imports it.

use std::sync::Arc;

use actix_web::http::header::HeaderName;

use crate::cache::Cache;
use crate::cache::usage::UsageTracker;
use crate::client_addr::TrustedProxies;
use crate::clock::Clock;
use crate::db::{DbPool, QueryCounter, Writer};
use crate::domain::LifetimePolicy;
use crate::domain::idempotency::ResponseSealer;
use crate::domain::rate_limits::RateLimitModels;
use crate::lookup_limit::LookupLimiter;

/// The shared state of one server.
pub struct AppState {
    /// Connections for reads (and, on PostgreSQL, writes: see [`Writer`]).
    pub pool: DbPool,
    /// Where every write goes; see `services::write`.
    pub writer: Writer,
    pub clock: Arc<dyn Clock>,
    /// Uses of keys not yet written to `last_used_at`.
    pub usage: Arc<UsageTracker>,
    /// Who each recently presented key is, and the keys recently retrieved.
    pub cache: Arc<Cache>,
    /// Statements run so far (the pool's and the writer's).
    pub queries: QueryCounter,
    /// How long a new invite can be accepted, in seconds.
    pub invite_ttl_secs: i64,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Each client's budget of lookups of unknown keys.
    pub lookup_limit: LookupLimiter,
    /// The header `/forward-auth` reads a key from when there is no bearer token.
    pub forward_auth_key_header: Option<HeaderName>,
    /// Seals the answers kept for `Idempotency-Key` replays; `None`: none are kept.
    pub idempotency_sealer: Option<ResponseSealer>,
    /// The configured models and the default per-model limits (`RATE_LIMIT_MODELS`).
    pub rate_limit_models: Arc<RateLimitModels>,
    /// The maximum and default lifetime of new keys (`KEY_MAX_LIFETIME_SECS`,
    /// `KEY_DEFAULT_LIFETIME_SECS`).
    pub key_lifetime: LifetimePolicy,
}

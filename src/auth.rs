//! The one verification path every way of presenting a key goes through (this API's own
//! bearer authentication, forward auth, introspection), and the authenticated caller.
//!
//! Policy: the key is checked before anything else about the request (body, query, path), so
//! a caller without a valid key learns nothing but 401. The `Authorization` header is never
//! logged. Steady state costs no database round trip (see `cache`), and neither does a
//! well-formed key that was never issued: its hash is not in the set of live hashes.
//!
//! A key's prefix says what it is ([`KeyFormat`]) and so which table holds it: admin keys
//! (`admin_api_keys`) authenticate this API; project keys (`sk-proj-`, `sk-svcacct-`, in
//! `project_api_keys`) only the services behind the proxy (forward auth, introspection), and
//! this API refuses them with a 401 that says so. [`verify`] answers with a [`Verdict`] of
//! either kind; each route maps it to its own wire form.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::audit::Origin;
use crate::cache::invalidation::LEASE;
use crate::cache::keyset::prefix_of;
use crate::cache::{
    Cache, CachedKey, CachedProjectKey, HashPrefix, Lookup, Presence, ProjectLookup,
};
use crate::client_addr::ClientAddr;
use crate::db::run_blocking;
use crate::domain::secret::{KeyDigest, KeyFormat, digest_key, hex};
use crate::domain::{Scope, Scopes};
use crate::error::ApiError;
use crate::lookup_limit::Unit;
use crate::metrics::{self, AuthOutcome, Via};
use crate::models::user::User;
use crate::models::{admin_api_key, project_api_key};
use crate::state::AppState;

/// The authenticated caller of a request: the key that was presented, its owner and scopes
/// (the fields of [`CachedKey`], shared with the auth cache rather than copied per request),
/// and where the request came from, for the audit log.
#[derive(Clone, Debug)]
pub struct AdminKey {
    key: Arc<CachedKey>,
    /// The client, after `TRUSTED_PROXIES`; set by the extractor (`None` before, or when the
    /// client cannot be told).
    client_ip: Option<IpAddr>,
    /// The raw `User-Agent`: made into text (and redacted) only by a write that records it.
    user_agent: Option<HeaderValue>,
}

impl std::ops::Deref for AdminKey {
    type Target = CachedKey;

    fn deref(&self) -> &CachedKey {
        &self.key
    }
}

impl AdminKey {
    fn new(key: Arc<CachedKey>) -> Self {
        Self {
            key,
            client_ip: None,
            user_agent: None,
        }
    }

    /// Where the request came from, as the audit log records it.
    pub fn origin(&self) -> Origin {
        Origin::new(
            self.client_ip,
            self.user_agent.as_ref().map(HeaderValue::as_bytes),
        )
    }

    /// 403 unless the caller holds `scope` (as the cache knows it: the write re-checks it in
    /// its transaction, see `services::caller`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        require_scope(self.scopes, scope)
    }
}

/// A verified project key (`sk-proj-` or `sk-svcacct-`): its project, owner and scopes (the
/// fields of [`CachedProjectKey`], shared with the cache).
#[derive(Clone, Debug)]
pub struct ProjectKey(Arc<CachedProjectKey>);

impl std::ops::Deref for ProjectKey {
    type Target = CachedProjectKey;

    fn deref(&self) -> &CachedProjectKey {
        &self.0
    }
}

/// What verification says of a usable key: which kind it is, and the key as cached.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// An admin key (`sk-admin-`).
    Admin(AdminKey),
    /// A project key of a member or a service account.
    Project(ProjectKey),
}

impl Verdict {
    /// The key's id.
    pub fn key_id(&self) -> &str {
        match self {
            Self::Admin(key) => &key.key_id,
            Self::Project(key) => &key.key_id,
        }
    }
}

/// 403 unless `held` contains `scope`.
pub fn require_scope(held: Scopes, scope: Scope) -> Result<(), ApiError> {
    if held.contains(scope) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        message: format!("This key lacks the `{scope}` scope that this operation needs."),
        code: format!("missing_scope.{scope}"),
    })
}

/// 403 unless `held` contains every scope in `granted` (no escalation).
pub fn may_grant(held: Scopes, granted: Scopes) -> Result<(), ApiError> {
    match granted.missing_from(held).first() {
        None => Ok(()),
        Some(scope) => Err(ApiError::Forbidden {
            message: format!(
                "A key cannot grant a scope it does not hold itself: this key lacks `{scope}`."
            ),
            code: format!("missing_scope.{scope}"),
        }),
    }
}

/// Middleware in front of every API route: authenticates the request before anything else
/// (body, query or path parsing) can answer, so a caller without a valid key learns nothing
/// but 401. The authenticated key is left in the request extensions for [`AdminKey`].
pub async fn require_admin_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let authenticated = match req.app_data::<web::Data<AppState>>() {
        Some(state) => {
            let (result, token) = match bearer_token(req.request()) {
                Ok(token) => (authenticate(state, req.request(), token).await, Some(token)),
                Err(e) => (Err(e), None),
            };
            metrics::auth(
                Via::Api,
                outcome(result.as_ref().map(|key| key.has_access()), token),
            );
            result
        }
        None => Err(ApiError::Internal(
            "AppState is not registered with the App".into(),
        )),
    };
    match authenticated {
        Ok(key) => {
            record_key_id(req.request(), &key.key_id);
            req.extensions_mut().insert(key);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        // Answer here rather than return Err, so outer middleware (no-store) still applies.
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// What the metrics call the answer to a presented key: `result` is whether a usable key
/// has some access, or why it was refused (`token`, when one could be read). The codes are
/// those of the 401s below and of the ways in (`routes::forward_auth`).
pub fn outcome(result: Result<bool, &ApiError>, token: Option<&str>) -> AuthOutcome {
    match result {
        Ok(true) => AuthOutcome::Ok,
        Ok(false) => AuthOutcome::NoAccess,
        Err(ApiError::Unauthorized { code, .. }) => match *code {
            "missing_api_key" => AuthOutcome::Missing,
            "invalid_api_key" if token.is_some_and(|t| KeyFormat::of(t).is_some()) => {
                AuthOutcome::Unknown
            }
            "api_key_disabled" => AuthOutcome::Disabled,
            "api_key_expired" => AuthOutcome::Expired,
            "user_disabled" | "owner_inactive" => AuthOutcome::OwnerDisabled,
            "project_key_not_allowed" => AuthOutcome::WrongKind,
            "multiple_api_keys" | "multiple_authorization_headers" => AuthOutcome::MultipleKeys,
            _ => AuthOutcome::Malformed,
        },
        Err(ApiError::InvalidRequest {
            code: Some("multiple_authorization_headers"),
            ..
        }) => AuthOutcome::MultipleKeys,
        Err(ApiError::RateLimited { .. }) => AuthOutcome::RateLimited,
        Err(_) => AuthOutcome::Error,
    }
}

impl Verdict {
    /// Whether the key can do anything: an admin key with some effective scope or
    /// permission; any usable project key (its scopes are checked per request).
    pub fn has_access(&self) -> bool {
        match self {
            Self::Admin(key) => key.has_access(),
            Self::Project(_) => true,
        }
    }
}

/// Puts the id of the key that authenticated `req` on its access line (see `telemetry`),
/// so the line says which key made the request.
pub fn record_key_id(req: &HttpRequest, key_id: &str) {
    crate::telemetry::access::record_key_id(req, key_id);
}

/// Handlers take `AdminKey` to see who is calling; [`require_admin_key`] put it there.
impl FromRequest for AdminKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(mut key) = req.extensions().get::<AdminKey>().cloned() else {
            return ready(Err(ApiError::Internal(
                "a handler taking AdminKey is not behind require_admin_key".into(),
            )));
        };
        // Cheap here (an address and a reference-counted header); text only for a write.
        key.client_ip = req
            .app_data::<web::Data<AppState>>()
            .and_then(|state| state.trusted_proxies.client_ip_of(req));
        key.user_agent = req.headers().get(header::USER_AGENT).cloned();
        ready(Ok(key))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let first = values.next();
    if values.next().is_some() {
        // Which copy would count is a guess; a proxy and a client may disagree on it.
        return Err(ApiError::InvalidRequest {
            message: "Send one `Authorization` header; this request has several.".to_owned(),
            param: None,
            code: Some("multiple_authorization_headers"),
        });
    }
    let value = first.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_api_key",
            "No API key was provided. Send your admin key as `Authorization: Bearer sk-admin-...`.",
        )
    })?;
    let malformed = || {
        ApiError::unauthorized(
            "invalid_api_key",
            "The Authorization header must be `Bearer <admin key>`.",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    Ok(token.trim())
}

/// Checks a presented admin key for this API's own routes: see [`verify`]. A project key is
/// refused with a 401 that says it cannot be used here.
pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<AdminKey, ApiError> {
    match KeyFormat::of(token) {
        Some(KeyFormat::Admin) => {
            verify_admin(state, token, || Some(state.trusted_proxies.client_of(req))).await
        }
        Some(_) => Err(project_key_refused()),
        None => Err(invalid_key()),
    }
}

/// Checks a presented key of any kind: format first (garbage never reaches the cache or the
/// database), then the cache, then the set of live hashes (a hash not in it is refused without
/// a lookup), the database only for a hash in the set (the table the key's prefix names), then
/// enabled, expiry and the owner's standing against the clock. Records the use for
/// `last_used_at`, at most once per key per second.
///
/// `req` says who the client is (`client_addr`), consulted only when the set cannot vouch that
/// a hash is absent (see `lookup_limit`): the lookup then takes a unit of that client's budget,
/// and a client with none left gets 429 instead of a lookup.
pub async fn verify(state: &AppState, req: &HttpRequest, token: &str) -> Result<Verdict, ApiError> {
    verify_charging(state, token, || Some(state.trusted_proxies.client_of(req))).await
}

/// [`verify`] for a token a resource server introspects: the token is its user's, so a
/// lookup is charged to nobody's budget (the resource server is itself an authenticated
/// caller; see `lookup_limit`).
pub async fn verify_introspected(state: &AppState, token: &str) -> Result<Verdict, ApiError> {
    verify_charging(state, token, || None).await
}

async fn verify_charging(
    state: &AppState,
    token: &str,
    payer: impl FnOnce() -> Option<ClientAddr>,
) -> Result<Verdict, ApiError> {
    match KeyFormat::of(token) {
        Some(KeyFormat::Admin) => verify_admin(state, token, payer).await.map(Verdict::Admin),
        Some(_) => verify_project(state, token, payer)
            .await
            .map(Verdict::Project),
        None => Err(invalid_key()),
    }
}

async fn verify_admin(
    state: &AppState,
    token: &str,
    payer: impl FnOnce() -> Option<ClientAddr>,
) -> Result<AdminKey, ApiError> {
    let digest = digest_key(token);
    let now = state.clock.now();
    let key = match state.cache.lookup(&digest, now) {
        Lookup::Known(key) => key,
        Lookup::Unknown => return Err(invalid_key()),
        Lookup::Miss(ticket) => {
            let unit = may_look_up(state, &digest, payer, invalid_key).await?;
            let hash = hex(&digest);
            let record = run_blocking(&state.pool, move |conn| {
                Ok(admin_api_key::find_auth_record(conn, &hash)?)
            })
            .await?;
            refund_if_found(state, record.is_some(), unit);
            state
                .cache
                .fill(digest, ticket, record, now)
                .ok_or_else(invalid_key)?
        }
    };
    check_usable(key.enabled, key.expires_at, now)?;
    check_owner(&key.owner)?;
    if key.first_use_in(now) {
        state.usage.record(&key.key_id, now);
    }
    Ok(AdminKey::new(key))
}

async fn verify_project(
    state: &AppState,
    token: &str,
    payer: impl FnOnce() -> Option<ClientAddr>,
) -> Result<ProjectKey, ApiError> {
    let digest = digest_key(token);
    let now = state.clock.now();
    let key = match state.cache.lookup_project(&digest, now) {
        ProjectLookup::Known(key) => key,
        ProjectLookup::Unknown => return Err(invalid_project_key()),
        ProjectLookup::Miss(ticket) => {
            let unit = may_look_up(state, &digest, payer, invalid_project_key).await?;
            let hash = hex(&digest);
            let record = run_blocking(&state.pool, move |conn| {
                Ok(project_api_key::find_auth_record(conn, &hash)?)
            })
            .await?;
            refund_if_found(state, record.is_some(), unit);
            state
                .cache
                .fill_project(digest, ticket, record, now)
                .ok_or_else(invalid_project_key)?
        }
    };
    check_project_key(&key, now)?;
    if key.first_use_in(now) {
        state.usage.record_project(&key.key_id, now);
    }
    Ok(ProjectKey(key))
}

/// Before a lookup of `digest`: refused (with `unknown`) if the set of live hashes vouches it
/// is absent; a unit of the payer's budget if the set cannot vouch either way.
async fn may_look_up(
    state: &AppState,
    digest: &KeyDigest,
    payer: impl FnOnce() -> Option<ClientAddr>,
    unknown: fn() -> ApiError,
) -> Result<Option<Unit>, ApiError> {
    match presence(&state.cache, prefix_of(digest)).await {
        Presence::Live => Ok(None),
        Presence::Absent => Err(unknown()),
        Presence::Unsure => match payer() {
            Some(client) => Ok(Some(state.lookup_limit.take(client).map_err(rate_limited)?)),
            None => Ok(None),
        },
    }
}

/// A lookup that found a key costs its client nothing.
fn refund_if_found(state: &AppState, found: bool, unit: Option<Unit>) {
    if found && let Some(unit) = unit {
        state.lookup_limit.refund(unit);
    }
}

/// What the set of live hashes says of `prefix`. With a listener, a hash not in the set may
/// belong to a key another replica made just before this request: wait until the listener has
/// applied everything committed before the request arrived (one ping), then ask again. A
/// listener that does not catch up within its lease leaves the answer unsure.
async fn presence(cache: &Cache, prefix: HashPrefix) -> Presence {
    let arrived = cache.instant();
    match cache.presence(prefix) {
        Presence::Absent if cache.listening() => {
            if cache.wait_for_sync_after(arrived, LEASE).await {
                cache.presence(prefix)
            } else {
                Presence::Unsure
            }
        }
        answer => answer,
    }
}

/// 401 for a key whose owner is disabled (until they are enabled again).
pub fn check_owner(owner: &User) -> Result<(), ApiError> {
    if owner.enabled {
        return Ok(());
    }
    Err(ApiError::unauthorized(
        "user_disabled",
        "The owner of this admin API key is disabled; their keys work again once they are enabled.",
    ))
}

/// The 401 for a key that is not (or no longer) known.
pub fn invalid_key() -> ApiError {
    ApiError::unauthorized(
        "invalid_api_key",
        "The admin API key provided is not valid, or has been deleted.",
    )
}

/// The 401 for a project key presented to this API.
pub fn project_key_refused() -> ApiError {
    ApiError::unauthorized(
        "project_key_not_allowed",
        "Project API keys (`sk-proj-...`, `sk-svcacct-...`) cannot be used with the admin API; \
         they are for the services behind the proxy. Send an admin key (`sk-admin-...`).",
    )
}

/// The 401 for a project key that is not (or no longer) known.
pub fn invalid_project_key() -> ApiError {
    ApiError::unauthorized(
        "invalid_api_key",
        "The project API key provided is not valid, or has been deleted.",
    )
}

/// 401 for a project key that is disabled, expired at `now`, or whose owner no longer has
/// access to its project (archived, member removed, user disabled).
pub fn check_project_key(key: &CachedProjectKey, now: i64) -> Result<(), ApiError> {
    if !key.enabled {
        return Err(ApiError::unauthorized(
            "api_key_disabled",
            "The project API key provided is disabled.",
        ));
    }
    if key.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(ApiError::unauthorized(
            "api_key_expired",
            "The project API key provided has expired.",
        ));
    }
    if !key.owner_has_access {
        return Err(ApiError::unauthorized(
            "owner_inactive",
            "The owner of this project API key no longer has access to its project (the \
             project is archived, or the member left it or is disabled).",
        ));
    }
    Ok(())
}

/// The 429 for a client that may look up an unknown key again after `wait`, in whole seconds
/// rounded up (at least 1, as `Retry-After: 0` would invite a retry that is refused again).
pub fn rate_limited(wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: crate::model_limits::retry_after_secs(wait),
    }
}

/// 401 for a key that exists but is disabled, or expired at `now`.
pub fn check_usable(enabled: bool, expires_at: Option<i64>, now: i64) -> Result<(), ApiError> {
    if !enabled {
        return Err(ApiError::unauthorized(
            "api_key_disabled",
            "The admin API key provided is disabled; re-enable it or use another key.",
        ));
    }
    if expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(ApiError::unauthorized(
            "api_key_expired",
            "The admin API key provided has expired.",
        ));
    }
    Ok(())
}

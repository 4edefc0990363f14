//! Building and running the HTTP server; shared by `main` and the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, web};

use crate::cache::usage::UsageTracker;
use crate::cache::{Cache, invalidation};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DatabaseTarget, DbSetupError, QueryCounter, Writer};
use crate::error::{path_error_handler, query_error_handler};
use crate::extract::BodyConfig;
use crate::lookup_limit::{self, LookupLimiter};
use crate::routes;
use crate::server::{self, ConnectionLimits, ServerOptions};
use crate::services;
use crate::state::AppState;
use crate::telemetry::access::Observe;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot load the set of live key hashes")]
    KeySet(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot start the invalidation listener")]
    Listener(#[source] std::io::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// A built server, bound to its port but not yet running.
pub struct Application {
    port: u16,
    server: Server,
    /// The server of `METRICS_BIND_ADDR` and its port, when `/metrics` is served apart.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
    usage_flush_interval: Duration,
    /// SQLite's data version when the set of live hashes was loaded (see `sqlite_watch`).
    watch_from: Option<i64>,
}

impl Application {
    /// Connects to the database, applies migrations, subscribes to invalidations (on
    /// PostgreSQL) and binds the listener.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        crate::metrics::install();
        let queries = QueryCounter::default();
        let cache =
            Arc::new(Cache::new(settings.cache).with_mcp_presets(settings.mcp_presets.clone()));
        let (backend, database) =
            crate::telemetry::database_for_log(&DatabaseTarget::parse(&settings.database_url)?);
        tracing::info!(backend = %backend, database = %database, "database");
        tracing::info!(
            auth_cache_capacity = settings.cache.capacity,
            auth_cache_ttl = ?settings.cache.ttl,
            "auth cache"
        );
        let (url, pool_options) = (settings.database_url.clone(), settings.pool.clone());
        let counter = queries.clone();
        let (pool, writer, listener) = web::block(move || {
            let pool = db::connect_and_migrate(&url, &pool_options, counter.clone())?;
            let writer = Writer::start(&url, &pool, counter)?;
            let listener = match DatabaseTarget::parse(&url)? {
                DatabaseTarget::Postgres(url) => Some((
                    invalidation::listen(&url).map_err(DbSetupError::Connect)?,
                    url,
                )),
                DatabaseTarget::Sqlite(_) => None,
            };
            Ok::<_, DbSetupError>((pool, writer, listener))
        })
        .await
        .expect("the blocking pool is running")?;
        // Loaded after the listener subscribed, so no change is lost in between: one that
        // commits during the load is applied after it, from its notification.
        cache.set_key_loader(key_loader(pool.clone()));
        // On SQLite, where the watcher starts from: read before the load, so a commit by
        // another process during the load is noticed.
        let watch_from = crate::cache::sqlite_watch::data_version(&writer)
            .await
            .map_err(|e| StartupError::KeySet(e.to_string().into()))?;
        // Read in the background: the server is ready before the set is (start-up does not
        // grow with the number of keys). Until it is loaded the set vouches for no absence,
        // so a hash not in it is looked up on the client's budget, as while a listener is
        // down; a found key costs nothing. A change committed meanwhile is journaled and
        // replayed onto the loaded set (see `Cache::reload_keys`).
        let loading = Arc::clone(&cache);
        let generation = cache.begin_reload();
        actix_web::rt::spawn(async move {
            let started = std::time::Instant::now();
            let cache = Arc::clone(&loading);
            match web::block(move || loading.finish_reload(generation)).await {
                Ok(Ok(())) => {
                    let (live_hashes, bytes) = cache.key_set_size();
                    tracing::info!(live_hashes, bytes, elapsed = ?started.elapsed(), "set of live key hashes loaded");
                }
                // Retried by the listener (PostgreSQL) or the reconciler (SQLite), which
                // reload a set that is stale.
                Ok(Err(e)) => {
                    tracing::warn!(error = %crate::error::error_chain(&*e), "cannot load the set of live key hashes; unknown hashes are looked up on the clients' budgets until it is loaded")
                }
                Err(e) => tracing::warn!(error = %e, "cannot load the set of live key hashes"),
            }
        });
        if let Some((conn, url)) = listener {
            cache.renew_lease(std::time::Instant::now() + invalidation::LEASE);
            invalidation::spawn(url, conn, &cache).map_err(StartupError::Listener)?;
        }
        let bind_error = |source| StartupError::Bind {
            addr: settings.bind_addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.bind_addr).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let lookup_limit = LookupLimiter::new(settings.lookup_limit, clock.clone());
        tracing::info!(
            unknown_key_lookups_per_minute = settings.lookup_limit.per_minute,
            unknown_key_lookup_burst = settings.lookup_limit.burst,
            trusted_proxies = %settings.trusted_proxies,
            "unknown-key lookup limit"
        );
        tracing::info!(
            answers_kept = settings.idempotency_sealer.is_some(),
            "Idempotency-Key replays (answers are kept, sealed, only with IDEMPOTENCY_KEY_SECRET)"
        );
        tracing::info!(
            max_secs = ?settings.key_lifetime.max_secs,
            default_secs = ?settings.key_lifetime.default_secs,
            "key lifetime policy (None: keys may be made that never expire)"
        );
        let state = web::Data::new(AppState {
            pool,
            writer,
            clock,
            usage: Arc::new(UsageTracker::default()),
            cache,
            queries,
            invite_ttl_secs: i64::try_from(settings.invite_ttl.as_secs()).unwrap_or(i64::MAX),
            trusted_proxies: settings.trusted_proxies.clone(),
            lookup_limit,
            forward_auth_key_header: settings.forward_auth_key_header.clone(),
            idempotency_sealer: settings.idempotency_sealer.clone(),
            rate_limit_models: std::sync::Arc::new(settings.rate_limit_models.clone()),
            key_lifetime: settings.key_lifetime,
        });
        let limits = ConnectionLimits {
            head_timeout: settings.request_head_timeout,
            keep_alive: settings.keep_alive,
            max_connections_per_worker: settings.max_connections_per_worker.unwrap_or_else(|| {
                server::default_max_connections_per_worker(settings.workers, settings.pool.max_size)
            }),
        };
        tracing::info!(
            request_head_timeout = ?limits.head_timeout,
            keep_alive = ?limits.keep_alive,
            max_connections_per_worker = limits.max_connections_per_worker,
            "connection limits"
        );
        let options = ServerOptions {
            workers: settings.workers,
            // Database calls run on these threads, each holding a pooled connection: more
            // threads than connections would only queue on the pool (and cost memory). Each
            // worker has a blocking pool of its own, so the connections are shared among them.
            max_blocking_threads_per_worker: (settings.pool.max_size as usize / settings.workers)
                .max(1),
            limits,
        };
        let app_state = state.clone();
        let body = BodyConfig {
            limit: settings.max_body_bytes,
            timeout: settings.request_body_timeout,
        };
        let metrics = match &settings.metrics_bind_addr {
            Some(addr) => Some(metrics_server(addr, state.clone(), options)?),
            None => None,
        };
        let metrics_here = metrics.is_none();
        tracing::info!(
            addr = settings
                .metrics_bind_addr
                .as_deref()
                .unwrap_or(&settings.bind_addr),
            port = metrics.as_ref().map_or(port, |(port, _)| *port),
            "Prometheus metrics at /metrics"
        );
        let server = server::run(listener, options, move || {
            App::new()
                // The request id, the HTTP metrics and the access line; innermost, so it sees
                // the response the routes produced.
                .wrap(Observe)
                .wrap(
                    DefaultHeaders::new()
                        .add((CACHE_CONTROL, HeaderValue::from_static("no-store"))),
                )
                .configure(|cfg| {
                    if metrics_here {
                        cfg.service(metrics_resource());
                    }
                    configure(cfg, app_state.clone(), body)
                })
        })
        .map_err(bind_error)?;
        Ok(Self {
            port,
            server,
            metrics,
            state,
            usage_flush_interval: settings.usage_flush_interval,
            watch_from,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `METRICS_BIND_ADDR`, when `/metrics` is served there.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The shared state (the tests use it to flush usage and inspect the database).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until a shutdown signal, flushing `last_used_at` periodically and once at the end,
    /// and sweeping the lookup budgets of clients that have not needed one lately.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let interval = self.usage_flush_interval;
        let flusher = actix_web::rt::spawn(async move {
            let mut ticks = actix_web::rt::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                services::usage::flush_logged(&state).await;
            }
        });
        let state = self.state.clone();
        let sweeper = actix_web::rt::spawn(async move {
            let mut ticks = actix_web::rt::time::interval(lookup_limit::SWEEP_INTERVAL);
            loop {
                ticks.tick().await;
                state.lookup_limit.sweep();
                state.cache.model_limits.sweep(state.clock.monotonic());
            }
        });
        let (state, watch_from) = (self.state.clone(), self.watch_from);
        let watcher = actix_web::rt::spawn(async move {
            if let Some(baseline) = watch_from {
                let cache = Arc::clone(&state.cache);
                crate::cache::sqlite_watch::watch(state.writer.clone(), &cache, baseline).await;
            }
        });
        let state = self.state.clone();
        let reconciler = actix_web::rt::spawn(async move {
            let start = actix_web::rt::time::Instant::now() + KEY_SET_RECONCILE_INTERVAL;
            let mut ticks = actix_web::rt::time::interval_at(start, KEY_SET_RECONCILE_INTERVAL);
            loop {
                ticks.tick().await;
                let state = state.clone();
                let _ = web::block(move || reconcile_keys(&state)).await;
            }
        });
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        flusher.abort();
        sweeper.abort();
        reconciler.abort();
        watcher.abort();
        services::usage::flush_logged(&self.state).await;
        result
    }
}

/// How often, without a listener (SQLite), the set of live hashes is checked against the table.
pub const KEY_SET_RECONCILE_INTERVAL: Duration = Duration::from_secs(60);

/// Reads every stored hash on a pooled connection.
fn key_loader(pool: db::DbPool) -> crate::cache::KeyLoader {
    Box::new(move || {
        let mut conn = pool.get()?;
        Ok(crate::cache::keyset::load(&mut conn)?)
    })
}

/// Without a listener (SQLite), a backstop behind the watcher (`cache::sqlite_watch`) for keys
/// written behind the service's back (a `bootstrap` while the server runs, an operator's
/// `sqlite3`): reloads the set of live hashes when it is stale or holds another count of
/// hashes than the table holds keys. With a
/// listener, the triggers announce every change and the listener reloads a stale set.
fn reconcile_keys(state: &AppState) {
    if state.cache.lease_limited() {
        return;
    }
    let stored = state
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| {
            // The set holds both kinds of key.
            let admin = crate::models::admin_api_key::count(&mut conn);
            let project = crate::models::project_api_key::count(&mut conn);
            admin
                .and_then(|admin| Ok(admin + project?))
                .map_err(|e| e.to_string())
        });
    let Ok(stored) = stored else { return };
    let held = state.cache.key_set_size().0;
    if state.cache.keys_reloading()
        || (!state.cache.keys_stale() && usize::try_from(stored).is_ok_and(|stored| stored == held))
    {
        return;
    }
    match state.cache.reload_keys() {
        Ok(()) => tracing::info!(
            stored,
            held,
            "reloaded the set of live key hashes: it did not match the table"
        ),
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&*e), "cannot reload the set of live key hashes")
        }
    }
}

/// Registers state, extractor error handlers and every route.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>, body: BodyConfig) {
    cfg.app_data(state)
        .app_data(web::Data::new(body))
        .app_data(web::QueryConfig::default().error_handler(query_error_handler))
        .app_data(web::PathConfig::default().error_handler(path_error_handler))
        .service(probe(
            "/healthz",
            routes::health::get_or_head().to(routes::health::healthz),
            "GET, HEAD",
        ))
        .service(probe(
            "/readyz",
            routes::health::get_or_head().to(routes::health::readyz),
            "GET, HEAD",
        ))
        // The verification paths next: every request of every service behind the proxy
        // comes through them, and the router tries patterns in order.
        .configure(routes::verification)
        // The document under `/v1` too: clients given the `/v1` base URL look for it there.
        .service(
            web::scope("/v1")
                .configure(routes::api)
                .service(openapi_resource()),
        )
        .configure(routes::api)
        .service(openapi_resource())
        // The browser's entry points (`/`, `/docs`, `/console`), outside `/v1` and after the
        // API, whose requests need not be tried against them: they are pages, not API.
        .configure(routes::docs::routes)
        .configure(routes::console::routes)
        .default_service(web::to(routes::unknown_route));
}

/// `GET /openapi.json`, relative to `/v1` or the root.
fn openapi_resource() -> actix_web::Resource {
    probe("/openapi.json", web::get().to(crate::openapi::serve), "GET")
}

/// `GET /metrics` (and `HEAD`), unauthenticated like the probes (see `routes::metrics`).
fn metrics_resource() -> actix_web::Resource {
    probe(
        "/metrics",
        routes::health::get_or_head().to(routes::metrics::metrics),
        "GET, HEAD",
    )
}

/// Binds `addr` and builds the server that answers `/metrics` there (and 404 to anything
/// else), on one worker, with the main listener's connection limits.
fn metrics_server(
    addr: &str,
    state: web::Data<AppState>,
    options: ServerOptions,
) -> Result<(u16, Server), StartupError> {
    let bind_error = |source| StartupError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let options = ServerOptions {
        workers: 1,
        max_blocking_threads_per_worker: 1,
        ..options
    };
    let server = server::run(listener, options, move || {
        App::new()
            .wrap(Observe)
            .wrap(DefaultHeaders::new().add((CACHE_CONTROL, HeaderValue::from_static("no-store"))))
            .app_data(state.clone())
            .service(metrics_resource())
            .default_service(web::to(routes::unknown_route))
    })
    .map_err(bind_error)?;
    Ok((port, server))
}

/// An unauthenticated resource with one route; other methods answer 405 with `allow`. Named
/// after its path, as every resource is (see `metrics::http`).
fn probe(path: &str, route: actix_web::Route, allow: &'static str) -> actix_web::Resource {
    web::resource(path)
        .name(path)
        .route(route)
        .default_service(routes::method_not_allowed(allow))
}

//! `TestApp`: one running server per test on its own database, plus request helpers.
//!
//! SQLite tests use a file in a fresh temp dir. PostgreSQL tests create a uniquely named
//! database on the server in `TEST_DATABASE_URL` and drop it afterwards; without that variable
//! they are skipped, except under `CI`, where its absence is an error.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use admin_api_keys::clock::ManualClock;
use admin_api_keys::config::Settings;
use admin_api_keys::db::{DbConnection, PoolOptions, QueryCounter, connect_and_migrate};
use admin_api_keys::domain::{Email, KeyName};
use admin_api_keys::services::bootstrap::create_owner_with_key;
use admin_api_keys::startup::Application;
use admin_api_keys::state::AppState;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The clock every test starts at (2027-01-15).
pub const START: i64 = 1_800_000_000;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The plaintext of the bootstrapped key, used by the request helpers.
    pub admin_key: String,
    pub admin_key_id: String,
    pub owner_id: String,
    pub clock: ManualClock,
    pub state: web::Data<AppState>,
    pub database_url: String,
    _database: Arc<TestDatabase>,
}

/// Builds and starts a server on `database_url`, with the test settings as `configure` leaves
/// them; returns its address and state.
async fn start_server(
    database_url: &str,
    clock: &ManualClock,
    configure: impl FnOnce(&mut Settings),
) -> (String, web::Data<AppState>) {
    let mut settings = Settings {
        database_url: database_url.to_owned(),
        pool: PoolOptions {
            max_size: 4,
            acquire_timeout: Duration::from_secs(2),
            ..PoolOptions::default()
        },
        bind_addr: "127.0.0.1:0".to_owned(),
        // Tests flush explicitly.
        usage_flush_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    configure(&mut settings);
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .expect("the test server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    key_set_loaded(&state).await;
    (address, state)
}

/// Waits until the server's set of live key hashes has loaded once (it loads in the
/// background after start), so that tests of what the set decides see it.
pub async fn key_set_loaded(state: &AppState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !state.cache.keys_loaded_once() {
        assert!(
            std::time::Instant::now() < deadline,
            "the set of live key hashes did not load within 30 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The settings `TestApp::spawn` runs with, unchanged (for `backend_tests!`).
pub fn unchanged(_: &mut Settings) {}

impl TestApp {
    /// Starts a server on a fresh database of `backend`; `None` if PostgreSQL is not configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, unchanged).await
    }

    /// Like `spawn`, with the server's settings changed by `configure` (e.g. short timeouts).
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let database = Arc::new(TestDatabase::create(backend)?);
        let clock = ManualClock::new(START);

        // Bootstrap before the server starts, so on PostgreSQL its listener never hears of
        // the bootstrap key's creation (a late notification would void the tests' first fills).
        let url = database.url();
        let boot = web::block(move || {
            let pool = connect_and_migrate(&url, &PoolOptions::default(), QueryCounter::default())
                .expect("the test database migrates");
            let mut conn = pool.get().expect("a connection");
            create_owner_with_key(
                &mut conn,
                &KeyName::parse("owner", "Test Owner").unwrap(),
                Some(&Email::parse("email", "owner@example.com").unwrap()),
                &KeyName::parse("name", "Bootstrap").unwrap(),
                START,
            )
        })
        .await
        .unwrap()
        .expect("bootstrap succeeds");
        let (address, state) = start_server(&database.url(), &clock, configure).await;

        Some(TestApp {
            address,
            client: reqwest::Client::new(),
            admin_key: boot.secret.expose().to_owned(),
            admin_key_id: boot.key_id,
            owner_id: boot.owner_id,
            clock,
            state,
            database_url: database.url(),
            _database: database,
        })
    }

    /// A second server on this app's database, with its own pool and auth cache (another
    /// replica) and the same clock and bootstrap key.
    pub async fn spawn_replica(&self) -> TestApp {
        let (address, state) = start_server(&self.database_url, &self.clock, |_| {}).await;
        TestApp {
            address,
            client: reqwest::Client::new(),
            admin_key: self.admin_key.clone(),
            admin_key_id: self.admin_key_id.clone(),
            owner_id: self.owner_id.clone(),
            clock: self.clock.clone(),
            state,
            database_url: self.database_url.clone(),
            _database: Arc::clone(&self._database),
        }
    }

    /// Statements this server's pool has run so far.
    pub fn queries(&self) -> u64 {
        self.state.queries.get()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request with the bootstrapped key.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(&self.admin_key, method, path)
    }

    /// A request with `key` as bearer token.
    pub fn request_as(&self, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a key and returns the create response (asserting 200).
    pub async fn create_key(&self, body: Value) -> Value {
        let response = self
            .post_json("/v1/organization/admin_api_keys", &body)
            .await;
        let (status, json) = read(response).await;
        assert_eq!(status, StatusCode::OK, "create failed: {json}");
        json
    }

    /// Creates a key named `name` that does not expire.
    pub async fn create_named(&self, name: &str) -> Value {
        self.create_key(json!({ "name": name })).await
    }

    /// `GET /v1/organization/admin_api_keys?{query}` (asserting 200).
    pub async fn list(&self, query: &str) -> Value {
        let (status, json) = read(
            self.get(&format!("/v1/organization/admin_api_keys?{query}"))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "list failed: {json}");
        json
    }

    /// Writes pending `last_used_at` values now.
    pub async fn flush_usage(&self) {
        admin_api_keys::services::usage::flush(&self.state)
            .await
            .expect("flush succeeds");
    }

    /// Waits until this server's listener (PostgreSQL's NOTIFY, SQLite's watcher) has applied
    /// every change committed so far, so a late notification of the test's own setup cannot
    /// empty a cache the test is about to measure. Returns at once without a listener.
    pub async fn settle(&self) {
        let cache = &self.state.cache;
        if cache.listening() {
            let now = cache.instant();
            assert!(
                cache.wait_for_sync_after(now, Duration::from_secs(5)).await,
                "the listener of {} did not catch up within 5 s",
                self.address
            );
        }
    }

    /// Runs `f` on a pooled connection, off the async thread.
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.state.pool.clone();
        web::block(move || f(&mut pool.get().expect("a connection")))
            .await
            .unwrap()
    }
}

/// The `id`s of a list page's `data`, in order (keys or audit entries).
pub fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("a list page")
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Status and JSON body of a response.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body read");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"));
    (status, json)
}

/// Asserts `response` is an error in OpenAI's envelope; returns its `error` object.
pub async fn assert_error(response: reqwest::Response, status: StatusCode, context: &str) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let (actual, body) = read(response).await;
    assert_eq!(actual, status, "{context}: body {body}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{context}"
    );
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: {body}"
    );
    assert!(error["type"].is_string(), "{context}: {body}");
    for field in ["param", "code"] {
        assert!(
            error.as_object().unwrap().contains_key(field),
            "{context}: `{field}` missing from {body}"
        );
    }
    assert_eq!(error.as_object().unwrap().len(), 4, "{context}: {body}");
    error.clone()
}

/// A database that exists for one test and is dropped after it.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres { server_url: String, name: String },
}

/// How the names of the tests' PostgreSQL databases begin: `TEST_DATABASE_PREFIX`, or
/// `aak_test_` (lower-case letters, digits and `_`, as it goes into SQL unquoted).
fn database_prefix() -> String {
    let prefix = std::env::var("TEST_DATABASE_PREFIX").unwrap_or_else(|_| "aak_test_".to_owned());
    assert!(
        !prefix.is_empty()
            && prefix.len() <= 40
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "TEST_DATABASE_PREFIX must be 1 to 40 lower-case letters, digits and `_`, starting with a letter"
    );
    prefix
}

impl TestDatabase {
    /// A fresh database; `None` for PostgreSQL when `TEST_DATABASE_URL` is not set.
    pub fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::Sqlite(tempfile::tempdir().expect("a temp dir"))),
            Backend::Postgres => {
                let Ok(server_url) = std::env::var("TEST_DATABASE_URL") else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "TEST_DATABASE_URL must be set in CI so the PostgreSQL suite runs"
                    );
                    return None;
                };
                let name = format!(
                    "{}{}",
                    database_prefix(),
                    admin_api_keys::ids::random_id("").to_lowercase()
                );
                let mut conn = PgConnection::establish(&server_url)
                    .unwrap_or_else(|e| panic!("cannot reach TEST_DATABASE_URL: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create the test database");
                Some(Self::Postgres { server_url, name })
            }
        }
    }

    /// Its `DATABASE_URL`.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("test.db").display()),
            Self::Postgres { server_url, name } => with_database(server_url, name),
        }
    }
}

/// `server_url` with its database name replaced by `name`.
pub fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { server_url, name } = self
            && let Ok(mut conn) = PgConnection::establish(server_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// A member inserted straight into the database (there is no invite flow to add one through
/// the API here). The email is stored as the service stores it: lower-cased.
pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub created_at: i64,
}

impl TestApp {
    /// Inserts the user `new` and returns their id.
    pub async fn add_user(&self, new: NewUser<'_>) -> String {
        let user = admin_api_keys::models::user::User {
            id: admin_api_keys::ids::random_id(admin_api_keys::ids::USER),
            name: new.name.to_owned(),
            email: Some(new.email.to_lowercase()),
            role: new.role.to_owned(),
            created_at: new.created_at,
            enabled: true,
            permissions: admin_api_keys::domain::Role::from_db(new.role).default_permissions(),
            first_name: None,
            last_name: None,
            phone_number: None,
        };
        let id = user.id.clone();
        self.with_db(move |conn| admin_api_keys::models::user::insert(conn, &user))
            .await
            .expect("the user is inserted");
        id
    }

    /// An enabled user with `role` and a unique email, added now; returns their id.
    pub async fn add_member(&self, role: &str) -> String {
        let tag = admin_api_keys::ids::random_id("").to_lowercase();
        self.add_user(NewUser {
            name: &format!("{role} {tag}"),
            email: &format!("{tag}@example.com"),
            role,
            created_at: admin_api_keys::clock::Clock::now(&self.clock),
        })
        .await
    }

    /// A key for the user `owner_id`, made by the bootstrap key, with `scopes` (or the default
    /// when `None`): (id, secret). Asserts 200.
    pub async fn key_for(&self, owner_id: &str, scopes: Option<&[&str]>) -> (String, String) {
        let mut body = json!({ "name": "for a member", "owner_id": owner_id });
        if let Some(scopes) = scopes {
            body["scopes"] = json!(scopes);
        }
        let key = self.create_key(body).await;
        assert_eq!(key["owner"]["id"], owner_id, "{key}");
        (
            key["id"].as_str().unwrap().to_owned(),
            key["value"].as_str().unwrap().to_owned(),
        )
    }

    /// Sends `body` as JSON with `key`.
    pub async fn send_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.request_as(key, method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }
}

//! The log of the real binary: at `RUST_LOG=debug`, in either format, it never holds a secret,
//! wherever a client puts one (path, query, body, headers, method, or a request too malformed
//! to be routed); its access lines carry what an operator needs (request id, key id, status,
//! error code); its startup lines say what the server runs on, without a password; and it is
//! never coloured when stderr is a pipe.
//!
//! Unlike the other tests these start the `admin-api-keys` binary as a child process, its
//! stderr a pipe, so what is checked is exactly what an operator's log collector would receive.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use admin_api_keys::domain::secret::{KEY_LEN, KEY_PREFIX, generate_key, redact_secrets};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestDatabase, read};

const BINARY: &str = env!("CARGO_BIN_EXE_admin-api-keys");
const KEYS: &str = "/v1/organization/admin_api_keys";
const AUDIT_LOGS: &str = "/v1/organization/audit_logs";
const INVITES: &str = "/v1/organization/invites";
/// Length of the pieces of a secret's body that must not appear in the log.
const WINDOW: usize = 12;

macro_rules! log_tests {
    ($backend:ident $(, #[$attr:meta])?) => {
        mod $backend {
            use super::Format::{Json, Text};
            use crate::helpers::Backend;

            fn backend() -> Backend {
                match stringify!($backend) {
                    "sqlite" => Backend::Sqlite,
                    _ => Backend::Postgres,
                }
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn the_log_never_holds_a_secret_wherever_a_client_puts_it() {
                super::scan(backend(), Text).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn the_json_log_never_holds_a_secret_wherever_a_client_puts_it() {
                super::scan(backend(), Json).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn json_lines_are_objects_and_access_lines_carry_the_request_fields() {
                super::json_access_lines(backend()).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn a_safe_request_id_is_kept_and_any_other_is_replaced_on_every_response() {
                super::request_ids(backend()).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn a_30_kb_path_or_a_long_method_is_cut_short_in_the_log() {
                super::long_client_text(backend()).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn access_lines_say_which_client_called_with_its_user_agent_redacted_and_capped() {
                super::where_calls_came_from(backend()).await;
            }

            #[actix_web::test]
            $(#[$attr])?
            async fn startup_lines_name_the_backend_database_migrations_and_address() {
                super::startup_lines(backend()).await;
            }
        }
    };
}

log_tests!(sqlite);
log_tests!(postgres, #[cfg_attr(not(postgres_tests), ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests")]);

/// `LOG_FORMAT` for the binary.
#[derive(Clone, Copy, Debug)]
enum Format {
    Text,
    Json,
}

impl Format {
    fn env(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }

    /// How `field` with `value` shows in a line: `field=value` in text (a string unquoted),
    /// `"field":value` in JSON.
    fn field(self, field: &str, value: Value) -> String {
        match (self, value) {
            (Format::Text, Value::String(text)) => format!("{field}={text}"),
            (Format::Text, value) => format!("{field}={value}"),
            (Format::Json, value) => format!("{field:?}:{value}"),
        }
    }

    /// Whether `line` is the access line of a finished request.
    fn is_access_line(self, line: &str) -> bool {
        match self {
            Format::Text => line.contains("admin_api_keys::access: finished"),
            Format::Json => {
                let line: Value = serde_json::from_str(line).expect("a JSON line");
                line["target"] == "admin_api_keys::access" && line["message"] == "finished"
            }
        }
    }
}

async fn scan(backend: Backend, format: Format) {
    // Arrange: a database, a bootstrapped key, the server, and secrets of every sort.
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(&database.url(), &dir.path().join("bootstrap.log"), format);
    let mut server = Server::start(&database.url(), &dir.path().join("serve.log"), format).await;

    let made = server.create_key(&boot, "Log test").await;
    let created = made["value"].as_str().expect("a value").to_owned();
    let created_id = made["id"].as_str().expect("an id").to_owned();
    let doomed = server.create_key(&boot, "Deleted").await;
    let deleted = doomed["value"].as_str().unwrap().to_owned();
    let doomed_path = format!("{KEYS}/{}", doomed["id"].as_str().unwrap());
    let delete = server.request(&boot, Method::DELETE, &doomed_path);
    let status = server.send(delete).await;
    assert_eq!(status, StatusCode::OK, "the doomed key is deleted");
    let (accept_token, member_key) = server.invite_and_accept(&boot).await;
    let invented = generate_key().expose().to_owned();
    let truncated = generate_key().expose()[..KEY_LEN - 10].to_owned();
    let bad_checksum = format!("{}zzzzzz", &generate_key().expose()[..KEY_LEN - 6]);
    let secrets = [
        &boot,
        &created,
        &deleted,
        &invented,
        &truncated,
        &bad_checksum,
        &accept_token,
        &member_key,
    ];

    // Act: every place a client could put one.
    for secret in [&created, &deleted, &invented, &truncated, &bad_checksum] {
        server.send_everywhere(&boot, secret, &created_id).await;
    }
    for secret in [&deleted, &invented, &truncated, &bad_checksum] {
        let bearer = server.request(secret, Method::GET, KEYS);
        server.send(bearer).await;
    }
    server
        .send_invite_token_everywhere(&boot, &accept_token)
        .await;
    server.send_malformed(&invented);
    let sent = server.sent;
    let log =
        server.stop().await + &std::fs::read_to_string(dir.path().join("bootstrap.log")).unwrap();

    // Assert: no secret, nor a piece of one, and yet every request was logged.
    for secret in secrets {
        for piece in exposures(secret) {
            let leaks: Vec<&str> = log.lines().filter(|line| line.contains(&piece)).collect();
            assert!(
                leaks.is_empty(),
                "{backend:?}: the log holds {piece:?} of the secret {secret:?}:\n{}",
                leaks.join("\n")
            );
        }
    }
    let finished = log
        .lines()
        .filter(|line| format.is_access_line(line))
        .count();
    assert_eq!(
        finished, sent,
        "{backend:?} {format:?}: one access line per request\n{log}"
    );
    let invented_shown = redact_secrets(&invented).into_owned();
    let evidence = [
        (
            "http.target",
            json!(format!("{KEYS}/{invented_shown}/rotate")),
        ),
        (
            "http.target",
            json!(format!("{KEYS}?after=…&search=…&{invented_shown}")),
        ),
        (
            "http.target",
            json!(format!("{AUDIT_LOGS}?actor_ids[]=…&resource_ids[]=…")),
        ),
        ("http.route", json!(format!("{KEYS}/{{key_id}}/rotate"))),
        ("http.method", json!(invented_shown)),
        ("http.route", json!("-")),
        ("http.status_code", json!(401)),
    ];
    for (field, value) in evidence {
        let expected = format.field(field, value);
        // Followed by the next field or the end of the span's fields.
        let found = [" ", ",", "}"]
            .iter()
            .any(|end| log.contains(&format!("{expected}{end}")));
        assert!(found, "{backend:?}: the log lacks {expected:?}:\n{log}");
    }
}

/// What a client sends reaches the log capped: a 30 KB path and a 2,000-character method
/// leave lines of at most a few hundred characters of it, each saying how much was left out.
async fn long_client_text(backend: Backend) {
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(
        &database.url(),
        &dir.path().join("bootstrap.log"),
        Format::Text,
    );
    let mut server =
        Server::start(&database.url(), &dir.path().join("serve.log"), Format::Text).await;

    let long_path = server.request(
        &boot,
        Method::GET,
        &format!("{KEYS}/{}", "p".repeat(30 * 1024)),
    );
    let status = server.send(long_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let method = Method::from_bytes("M".repeat(2000).as_bytes()).unwrap();
    let long_method = server.request(&boot, method, KEYS);
    let status = server.send(long_method).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let sent = server.sent;
    let log = server.stop().await;

    let longest = log.lines().map(str::len).max().unwrap_or_default();
    assert!(
        longest < 2048,
        "{backend:?}: a log line of {longest} bytes:\n{log}"
    );
    let cut: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("…(+"))
        .filter(|line| Format::Text.is_access_line(line))
        .collect();
    assert_eq!(
        cut.len(),
        sent,
        "{backend:?}: each request's line says it was cut:\n{log}"
    );
    assert!(cut[0].contains(&format!("{KEYS}/ppp")), "{}", cut[0]);
    assert!(cut[1].contains("http.method=MMMM"), "{}", cut[1]);
}

/// An access line carries the client address the lookup budget uses (behind a trusted
/// proxy, the forwarded one) and the user agent, a secret in it redacted and a long one cut.
async fn where_calls_came_from(backend: Backend) {
    // Arrange: a server that trusts the loopback as its proxy.
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(
        &database.url(),
        &dir.path().join("bootstrap.log"),
        Format::Json,
    );
    let mut server = Server::start_with(
        &database.url(),
        &dir.path().join("serve.log"),
        Format::Json,
        &[("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    let key = generate_key();
    let body = &key.expose()[KEY_PREFIX.len()..];

    // Act
    let cases = [
        ("ua-plain", "curl/8.5.0 probe".to_owned(), "203.0.113.7"),
        (
            "ua-secret",
            format!("probe {}", key.expose()),
            "198.51.100.2",
        ),
        ("ua-long", "u".repeat(5000), "2001:db8::1"),
    ];
    for (id, user_agent, forwarded_for) in &cases {
        let request = server
            .request(&boot, Method::GET, KEYS)
            .header("X-Request-Id", *id)
            .header("User-Agent", user_agent.as_str())
            .header("X-Forwarded-For", *forwarded_for);
        assert_eq!(server.send(request).await, StatusCode::OK);
    }
    let log = server.stop().await;

    // Assert
    let access = |id: &str| -> Value {
        log.lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
            .find(|line| line["message"] == "finished" && line["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("{backend:?}: no access line for {id}:\n{log}"))["span"]
            .clone()
    };
    let plain = access("ua-plain");
    assert_eq!(plain["client.address"], "203.0.113.7", "{plain}");
    assert_eq!(plain["user_agent.original"], "curl/8.5.0 probe", "{plain}");
    let secret = access("ua-secret");
    assert_eq!(secret["client.address"], "198.51.100.2", "{secret}");
    assert_eq!(
        secret["user_agent.original"],
        format!("probe {}", key.redacted()),
        "{secret}"
    );
    for exposure in exposures(key.expose()) {
        assert!(
            !log.contains(&exposure),
            "{backend:?}: {exposure} in\n{log}"
        );
    }
    assert!(!log.contains(&body[..WINDOW]), "{backend:?}:\n{log}");
    let long = access("ua-long");
    // IPv6 clients count by their /64, in the budget and in the log.
    assert_eq!(long["client.address"], "2001:db8::/64", "{long}");
    assert_eq!(
        long["user_agent.original"],
        format!("{}…(+4744 characters)", "u".repeat(256)),
        "{long}"
    );
}

/// In JSON every line is an object; an access line has the request's fields under `span`.
async fn json_access_lines(backend: Backend) {
    // Arrange
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(
        &database.url(),
        &dir.path().join("bootstrap.log"),
        Format::Json,
    );
    let server = Server::start(&database.url(), &dir.path().join("serve.log"), Format::Json).await;

    // Act: an authenticated list, then the same without a key.
    let listed = server
        .request(&boot, Method::GET, &format!("{KEYS}?limit=5"))
        .header("X-Request-Id", "json-ok-1")
        .send()
        .await
        .expect("the server answers");
    let (status, page) = read(listed).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let boot_id = page["data"][0]["id"]
        .as_str()
        .expect("the boot key")
        .to_owned();
    let anonymous = server
        .client
        .get(format!("{}{KEYS}", server.address))
        .header("X-Request-Id", "json-401-1")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let log = server.stop().await;

    // Assert
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "target"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let access = |id: &str| {
        lines
            .iter()
            .find(|line| line["message"] == "finished" && line["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("{backend:?}: no access line for {id}:\n{log}"))
            .clone()
    };
    let ok = access("json-ok-1");
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["target"], "admin_api_keys::access");
    assert!(ok["latency_us"].is_u64(), "{ok}");
    let span = &ok["span"];
    assert_eq!(span["http.method"], "GET", "{ok}");
    assert_eq!(span["http.route"], KEYS, "{ok}");
    assert_eq!(span["http.target"], format!("{KEYS}?limit=…"), "{ok}");
    assert_eq!(span["http.status_code"], 200, "{ok}");
    assert_eq!(span["key_id"], boot_id.as_str(), "{ok}");
    assert!(span.get("error_code").is_none(), "no error, no code: {ok}");
    let refused = access("json-401-1");
    assert_eq!(refused["span"]["http.status_code"], 401, "{refused}");
    assert_eq!(
        refused["span"]["error_code"], "missing_api_key",
        "{refused}"
    );
    assert!(refused["span"].get("key_id").is_none(), "no key: {refused}");
    assert!(
        !log.contains("No API key was provided"),
        "a 4xx's message stays out of the log:\n{log}"
    );
}

/// A safe incoming id comes back and is logged; an unsafe one is replaced, in the response
/// and in the log, on every kind of response. The key id is on an authenticated request's
/// access line. And a log written to a pipe holds no colour codes.
async fn request_ids(backend: Backend) {
    // Arrange
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(
        &database.url(),
        &dir.path().join("bootstrap.log"),
        Format::Text,
    );
    let mut server =
        Server::start(&database.url(), &dir.path().join("serve.log"), Format::Text).await;
    let made = server.create_key(&boot, "Request ids").await;
    let (key, key_id) = (
        made["value"].as_str().unwrap(),
        made["id"].as_str().unwrap(),
    );
    let safe = "trace-7Fa_01.b:c";
    let long = "r".repeat(65);
    let unsafe_ids = [
        "spaces are not allowed 7f3a",
        "semi;colon-9c2e",
        "<b>markup-4d1e</b>",
        long.as_str(),
    ];
    // What is sent, what it gets, and whether the key is checked on its way.
    let kinds = [
        (
            Some(key),
            Method::GET,
            KEYS.to_owned(),
            StatusCode::OK,
            true,
        ),
        (
            None,
            Method::GET,
            KEYS.to_owned(),
            StatusCode::UNAUTHORIZED,
            false,
        ),
        (
            Some(key),
            Method::GET,
            "/no/such/route".to_owned(),
            StatusCode::NOT_FOUND,
            false,
        ),
        (
            Some(key),
            Method::PUT,
            "/healthz".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            false,
        ),
        (
            Some(key),
            Method::GET,
            format!("{KEYS}/key_missing"),
            StatusCode::NOT_FOUND,
            true,
        ),
    ];

    // Act
    let mut answered = Vec::new();
    for (i, (bearer, method, path, expected, authenticated)) in kinds.iter().enumerate() {
        let send = |id: &str| {
            let request = server
                .client
                .request(method.clone(), format!("{}{path}", server.address))
                .header("X-Request-Id", id);
            match bearer {
                Some(key) => request.bearer_auth(key),
                None => request,
            }
        };
        let given = format!("{safe}-{i}");
        for (id, kept) in [
            (given.as_str(), true),
            (unsafe_ids[i % unsafe_ids.len()], false),
        ] {
            let response = send(id).send().await.expect("the server answers");
            assert_eq!(response.status(), *expected, "{method} {path}");
            let returned = response
                .headers()
                .get("x-request-id")
                .unwrap_or_else(|| panic!("{method} {path}: no X-Request-Id"))
                .to_str()
                .unwrap()
                .to_owned();
            answered.push((id.to_owned(), kept, returned, *authenticated));
        }
    }
    let without = server
        .request(key, Method::GET, KEYS)
        .send()
        .await
        .expect("the server answers");
    let generated = without
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let log = server.stop().await;

    // Assert
    assert!(
        generated
            .as_deref()
            .is_some_and(|id| id.starts_with("req_") && id.len() == 28),
        "a request without an id gets one: {generated:?}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "{backend:?}: colour codes in a pipe:\n{log}"
    );
    let access_line = |id: &str| {
        log.lines()
            .find(|line| {
                line.contains("admin_api_keys::access: finished")
                    && line.contains(&format!("request_id={id} "))
            })
            .unwrap_or_else(|| panic!("{backend:?}: no access line for {id}:\n{log}"))
    };
    for (sent, kept, returned, authenticated) in answered {
        if kept {
            assert_eq!(returned, sent, "a safe id comes back as it was sent");
        } else {
            assert_ne!(returned, sent, "an unsafe id is replaced");
            assert!(returned.starts_with("req_"), "{returned}");
            assert!(
                !log.contains(&sent),
                "an unsafe id is not logged: {sent}\n{log}"
            );
        }
        let line = access_line(&returned);
        assert_eq!(
            line.contains(&format!("key_id={key_id} ")),
            authenticated,
            "the key id is on an authenticated request's line: {line}"
        );
    }
    assert!(
        access_line(&format!("{safe}-1")).contains("error_code=missing_api_key"),
        "a 401's access line names its code"
    );
}

/// The first lines say which backend and database (without a password), which migrations
/// this start applied, the cache settings and the address.
async fn startup_lines(backend: Backend) {
    // Arrange: on PostgreSQL, a URL with a password (the server trusts local connections).
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let (url, password) = with_password(&database.url());
    let dir = tempfile::tempdir().expect("a temp dir");

    // Act: a first start on an empty database, then a second.
    let first = Server::start(&url, &dir.path().join("first.log"), Format::Text)
        .await
        .stop()
        .await;
    let second = Server::start(&url, &dir.path().join("second.log"), Format::Text)
        .await
        .stop()
        .await;

    // Assert
    let (backend_name, shown) = match &database {
        TestDatabase::Sqlite(_) => ("sqlite", url.trim_start_matches("sqlite://").to_owned()),
        TestDatabase::Postgres { .. } => {
            let rest = url.split_once("://").unwrap().1;
            let (user_info, host) = rest.rsplit_once('@').expect("a user in TEST_DATABASE_URL");
            let user = user_info.split(':').next().unwrap();
            ("postgres", format!("{user}@{host}"))
        }
    };
    let migrations = std::fs::read_dir("migrations/sqlite").unwrap().count();
    assert!(migrations > 0);
    for (log, which) in [(&first, "first"), (&second, "second")] {
        let expected = [
            format!("database backend={backend_name} database={shown}\n"),
            "auth cache auth_cache_capacity=10000 auth_cache_ttl=30s".to_owned(),
            "admin-api-keys is serving addr=127.0.0.1:0 port=".to_owned(),
        ];
        for line in expected {
            assert!(log.contains(&line), "{which} start lacks {line:?}:\n{log}");
        }
        if let Some(password) = &password {
            assert!(
                !log.contains(password.as_str()),
                "{which} start logs the password:\n{log}"
            );
        }
    }
    let applied = first
        .lines()
        .find(|line| line.contains("database migrations applied"))
        .unwrap_or_else(|| panic!("the first start names its migrations:\n{first}"));
    assert!(
        applied.contains("applied=2026-11-23-100000_create_users_and_admin_api_keys, "),
        "{applied}"
    );
    assert_eq!(applied.matches(", ").count() + 1, migrations, "{applied}");
    assert!(
        second.contains("database migrations: none pending"),
        "the second start applies none:\n{second}"
    );
}

/// `url` with a password, when it is a PostgreSQL URL, and the password it holds.
fn with_password(url: &str) -> (String, Option<String>) {
    let Some(rest) = url.strip_prefix("postgres://") else {
        return (url.to_owned(), None);
    };
    let Some((user_info, host)) = rest.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    match user_info.split_once(':') {
        Some((_, password)) => (url.to_owned(), Some(password.to_owned())),
        None => (
            format!("postgres://{user_info}:sekret-pw-31@{host}"),
            Some("sekret-pw-31".to_owned()),
        ),
    }
}

/// Runs `bootstrap` on `database_url`, its log going to `log`; returns the key it printed.
fn bootstrap(database_url: &str, log: &Path, format: Format) -> String {
    let output = logging_command(database_url, format)
        .stderr(File::create(log).expect("the log file"))
        .args(["bootstrap", "--owner-name", "Log Owner"])
        .output()
        .expect("bootstrap runs");
    assert!(
        output.status.success(),
        "bootstrap failed ({}): {}",
        output.status,
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let key = String::from_utf8(output.stdout).expect("UTF-8 on stdout");
    let key = key.trim_end().to_owned();
    assert!(key.starts_with(KEY_PREFIX), "bootstrap printed {key:?}");
    key
}

/// The binary with the database and debug logging in `format`. `NO_COLOR` is unset: a log
/// that does not go to a terminal must be uncoloured without it.
fn logging_command(database_url: &str, format: Format) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "debug")
        .env("LOG_FORMAT", format.env())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    command
}

/// The binary serving on a free port.
struct Server {
    child: Child,
    /// Copies the child's stderr, a pipe, into `log`.
    copier: Option<JoinHandle<()>>,
    log: PathBuf,
    address: String,
    port: u16,
    client: reqwest::Client,
    /// Requests sent over HTTP so far: each must leave one access line.
    sent: usize,
}

impl Server {
    async fn start(database_url: &str, log: &Path, format: Format) -> Server {
        Self::start_with(database_url, log, format, &[]).await
    }

    /// The binary serving with these variables added to its environment.
    async fn start_with(
        database_url: &str,
        log: &Path,
        format: Format,
        vars: &[(&str, &str)],
    ) -> Server {
        let mut child = logging_command(database_url, format)
            .envs(vars.iter().copied())
            .args(["serve", "--bind-addr", "127.0.0.1:0", "--workers", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut stderr = child.stderr.take().expect("a piped stderr");
        let mut file = File::create(log).expect("the log file");
        let copier = std::thread::spawn(move || {
            std::io::copy(&mut stderr, &mut file).expect("the log is copied");
        });
        let mut server = Server {
            child,
            copier: Some(copier),
            log: log.to_owned(),
            address: String::new(),
            port: 0,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            sent: 0,
        };
        server.port = server.wait_for_port().await;
        server.address = format!("http://127.0.0.1:{}", server.port);
        server
    }

    /// The port from the `admin-api-keys is serving ... port=N` line (either format).
    async fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let port = log
                .lines()
                .find(|line| line.contains("admin-api-keys is serving"))
                .and_then(|line| {
                    line.split([' ', ',']).find_map(|f| {
                        f.strip_prefix("port=")
                            .or_else(|| f.strip_prefix("\"port\":"))
                    })
                })
                .and_then(|port| port.trim_end_matches('}').parse().ok());
            if let Some(port) = port {
                return port;
            }
            let exited = self.child.try_wait().expect("the server's status");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the server did not start ({exited:?}):\n{log}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn request(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
    }

    async fn send(&mut self, request: RequestBuilder) -> StatusCode {
        self.sent += 1;
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let _ = response.bytes().await;
        status
    }

    async fn create_key(&mut self, key: &str, name: &str) -> Value {
        self.sent += 1;
        let response = self
            .request(key, Method::POST, KEYS)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("the server answers");
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "create failed: {body}");
        body
    }

    /// Invites someone and accepts the invite; returns the accept token and the member's key.
    async fn invite_and_accept(&mut self, boot: &str) -> (String, String) {
        self.sent += 2;
        let invite = self
            .request(boot, Method::POST, INVITES)
            .json(&json!({ "email": "logged@example.com", "role": "reader" }))
            .send()
            .await
            .expect("the server answers");
        let (status, invite) = read(invite).await;
        assert_eq!(status, StatusCode::OK, "invite failed: {invite}");
        let token = invite["accept_token"].as_str().unwrap().to_owned();
        let accepted = self
            .client
            .post(format!("{}{INVITES}/accept", self.address))
            .json(&json!({ "token": token, "name": "Logged" }))
            .send()
            .await
            .expect("the server answers");
        let (status, accepted) = read(accepted).await;
        assert_eq!(status, StatusCode::OK, "accept failed: {accepted}");
        let key = accepted["api_key"]["value"].as_str().unwrap().to_owned();
        (token, key)
    }

    /// A used accept token everywhere the invite routes take input.
    async fn send_invite_token_everywhere(&mut self, boot: &str, token: &str) {
        let accept = format!("{}{INVITES}/accept", self.address);
        let mut requests = vec![
            self.request(boot, Method::GET, &format!("{INVITES}/{token}")),
            self.request(boot, Method::DELETE, &format!("{INVITES}/{token}")),
            self.request(boot, Method::GET, &format!("{INVITES}?after={token}")),
            self.request(boot, Method::POST, INVITES)
                .json(&json!({ "email": token, "role": token, "projects": [token] })),
            self.request(boot, Method::POST, INVITES)
                .json(&json!({ token: 1 })),
            self.request(
                boot,
                Method::GET,
                &format!("{INVITES}/accept?{token}={token}"),
            ),
        ];
        for body in [
            json!({ "token": token, "name": "Again" }),
            json!({ "token": token, "name": token }),
            json!({ "token": [token] }),
            json!({ token: token }),
        ] {
            requests.push(self.client.post(&accept).json(&body));
        }
        requests.push(
            self.client
                .post(&accept)
                .header("Content-Type", "application/json")
                .body(format!("{{\"token\": \"{token}")),
        );
        for request in requests {
            self.send(request).await;
        }
    }

    /// `secret` in each part of a request a client controls, authenticated with `boot`;
    /// `key_id` is a real key for the operations that need one.
    async fn send_everywhere(&mut self, boot: &str, secret: &str, key_id: &str) {
        let body = &secret[KEY_PREFIX.len()..];
        let hyphens_encoded = format!("sk%2Dadmin%2d{body}");
        let all_encoded = encode_all(secret);
        let mut requests = Vec::new();

        // The path id of every operation, raw and percent-encoded, with and without /v1.
        for id in [secret, &hyphens_encoded, &all_encoded] {
            for base in [KEYS, "/organization/admin_api_keys"] {
                requests.push(self.request(boot, Method::GET, &format!("{base}/{id}")));
                requests.push(
                    self.request(boot, Method::POST, &format!("{base}/{id}"))
                        .json(&json!({ "name": "renamed" })),
                );
                // A body that is not JSON, so the extractor fails with the path at hand.
                requests.push(
                    self.request(boot, Method::POST, &format!("{base}/{id}"))
                        .header("Content-Type", "application/json")
                        .body("{"),
                );
                requests.push(self.request(boot, Method::DELETE, &format!("{base}/{id}")));
                requests.push(self.request(boot, Method::POST, &format!("{base}/{id}/rotate")));
            }
        }

        // Query values and names.
        for query in [
            format!("after={secret}"),
            format!("search={secret}"),
            format!("status={secret}"),
            format!("limit={secret}&order={secret}"),
            format!("{secret}=1"),
            format!("{all_encoded}={all_encoded}"),
            format!("after={secret}&search={secret}&{secret}"),
            format!("search={hyphens_encoded}"),
        ] {
            requests.push(self.request(boot, Method::GET, &format!("{KEYS}?{query}")));
        }
        for query in [
            format!("actor_ids[]={secret}&resource_ids[]={secret}"),
            format!("actor_ids%5B%5D={all_encoded}&resource_ids%5B%5D={hyphens_encoded}"),
            format!("event_types[]={secret}&effective_at[gt]={secret}&{secret}[]=1"),
        ] {
            requests.push(self.request(boot, Method::GET, &format!("{AUDIT_LOGS}?{query}")));
        }

        // JSON bodies: a field's value, an unknown field's name, a wrong-typed value.
        for body in [
            json!({ "name": secret }),
            json!({ "name": "x", secret: 1 }),
            json!({ "name": "x", "expires_in_seconds": secret }),
            json!({ "name": "x", "scopes": [secret] }),
        ] {
            requests.push(self.request(boot, Method::POST, KEYS).json(&body));
        }
        for body in [
            json!({ "name": secret }),
            json!({ "enabled": secret }),
            json!({ secret: true }),
        ] {
            let path = format!("{KEYS}/{key_id}");
            requests.push(self.request(boot, Method::POST, &path).json(&body));
        }
        for body in [
            json!({ "expires_in_seconds": secret }),
            json!({ secret: 1 }),
        ] {
            let path = format!("{KEYS}/{key_id}/rotate");
            requests.push(self.request(boot, Method::POST, &path).json(&body));
        }
        for (content_type, body) in [
            ("application/json", format!("{{\"name\": \"{secret}")),
            ("text/plain", secret.to_owned()),
        ] {
            requests.push(
                self.request(boot, Method::POST, KEYS)
                    .header("Content-Type", content_type)
                    .body(body),
            );
        }

        // Headers, with and without a valid key beside them.
        let anonymous = |path: &str| self.client.get(format!("{}{path}", self.address));
        requests.push(anonymous(KEYS).header("Authorization", format!("Basic {secret}")));
        requests.push(anonymous(KEYS).header("Authorization", secret));
        requests.push(anonymous(KEYS).header("X-Api-Key", secret));
        requests.push(anonymous(KEYS).header("Cookie", format!("session={secret}")));
        requests.push(
            self.request(boot, Method::GET, KEYS)
                .header("Authorization", format!("Bearer {secret}")),
        );
        requests.push(
            self.request(boot, Method::GET, KEYS)
                .header("User-Agent", secret)
                .header("Referer", format!("http://example.com/{secret}"))
                .header("X-Forwarded-For", secret)
                .header("Forwarded", format!("for=\"{secret}\""))
                .header("X-Request-Id", secret)
                .header("Host", secret),
        );

        // The method, and unknown routes.
        let method = Method::from_bytes(secret.as_bytes()).expect("a key is a valid token");
        requests.push(self.request(boot, method.clone(), KEYS));
        requests.push(self.request(boot, method, &format!("/{secret}")));
        for path in [
            format!("/v1/{secret}"),
            format!("/{secret}?{secret}={secret}"),
            format!("/v1/organization/{all_encoded}"),
            format!("{KEYS}/{secret}/{secret}"),
            format!("/healthz/{secret}"),
        ] {
            requests.push(self.request(boot, Method::GET, &path));
        }

        for request in requests {
            self.send(request).await;
        }
    }

    /// Requests too malformed to reach the app, sent as raw bytes: actix-http rejects them
    /// while parsing the head, where a dependency might log what it read.
    fn send_malformed(&self, secret: &str) {
        for head in [
            format!("GET /{secret} HTTP/1.1\r\nHost: x\r\nContent-Length: {secret}\r\n\r\n"),
            format!("POST /{secret} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {secret}\r\n\r\n"),
            format!("GET /{secret} HTTP/1.1\r\nHost: x\r\nNo colon {secret}\r\n\r\n"),
            format!("GET /x HTTP/1.1\r\nHost: {secret}\r\nHost: {secret}\r\n\r\n"),
            format!("GET /{secret} {secret}\r\n\r\n"),
        ] {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("a connection");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream.write_all(head.as_bytes()).expect("the head is sent");
            let mut answer = [0; 12];
            stream.read_exact(&mut answer).expect("an answer");
            assert_eq!(&answer, b"HTTP/1.1 400", "{head:?} is refused");
        }
    }

    /// Stops the server gracefully (SIGTERM, so it flushes and logs its shutdown) and
    /// returns its whole log.
    async fn stop(mut self) -> String {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while terminated && Instant::now() < deadline {
            if self
                .child
                .try_wait()
                .expect("the server's status")
                .is_some()
            {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(copier) = self.copier.take() {
            copier.join().expect("the log copier");
        }
        std::fs::read_to_string(&self.log).expect("the log")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What of `secret` must never be in the log: every run of `WINDOW` characters of its body
/// after the prefix, plain and percent-encoded character by character.
fn exposures(secret: &str) -> Vec<String> {
    let body = &secret[KEY_PREFIX.len()..];
    let mut pieces = vec![secret.to_owned(), body.to_owned()];
    for start in 0..=body.len() - WINDOW {
        let piece = &body[start..start + WINDOW];
        pieces.push(piece.to_owned());
        pieces.push(encode_all(piece));
    }
    pieces
}

/// Each byte of `text` as `%XX`.
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

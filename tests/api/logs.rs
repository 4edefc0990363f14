//! The log of the real binary, at `RUST_LOG=debug`, never holds a secret, wherever a client
//! puts one: path, query, body, headers, method, or a request too malformed to be routed.
//!
//! Unlike the other tests this one starts the `admin-api-keys` binary as a child process, so
//! what is checked is exactly what an operator's log collector would receive on stderr.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

mod sqlite {
    #[actix_web::test]
    async fn the_log_never_holds_a_secret_wherever_a_client_puts_it() {
        super::scan(crate::helpers::Backend::Sqlite).await;
    }
}

mod postgres {
    #[actix_web::test]
    async fn the_log_never_holds_a_secret_wherever_a_client_puts_it() {
        super::scan(crate::helpers::Backend::Postgres).await;
    }
}

async fn scan(backend: Backend) {
    // Arrange: a database, a bootstrapped key, the server, and secrets of every sort.
    let Some(database) = TestDatabase::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let boot = bootstrap(&database.url(), &dir.path().join("bootstrap.log"));
    let mut server = Server::start(&database.url(), &dir.path().join("serve.log")).await;

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
        .filter(|line| line.contains("admin_api_keys::access: finished"))
        .count();
    assert_eq!(
        finished, sent,
        "{backend:?}: one access line per request\n{log}"
    );
    let invented_shown = redact_secrets(&invented).into_owned();
    let evidence = [
        format!("http.target={KEYS}/{invented_shown}/rotate "),
        format!("http.target={KEYS}?after=…&search=…&{invented_shown} "),
        format!("http.target={AUDIT_LOGS}?actor_ids[]=…&resource_ids[]=… "),
        format!("http.route={KEYS}/{{key_id}}/rotate "),
        format!("http.method={invented_shown} "),
        "http.route=- ".to_owned(),
        "http.status_code=401".to_owned(),
    ];
    for expected in evidence {
        assert!(
            log.contains(&expected),
            "{backend:?}: the log lacks {expected:?}:\n{log}"
        );
    }
}

/// Runs `bootstrap` on `database_url`, its log going to `log`; returns the key it printed.
fn bootstrap(database_url: &str, log: &Path) -> String {
    let output = logging_command(database_url, log)
        .args(["bootstrap", "--owner-name", "Log Owner"])
        .output()
        .expect("bootstrap runs");
    assert!(
        output.status.success(),
        "bootstrap failed: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let key = String::from_utf8(output.stdout).expect("UTF-8 on stdout");
    let key = key.trim_end().to_owned();
    assert!(key.starts_with(KEY_PREFIX), "bootstrap printed {key:?}");
    key
}

/// The binary with the database and debug logging, uncoloured, stderr into `log`.
fn logging_command(database_url: &str, log: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(File::create(log).expect("the log file"));
    command
}

/// The binary serving on a free port.
struct Server {
    child: Child,
    log: PathBuf,
    address: String,
    port: u16,
    client: reqwest::Client,
    /// Requests sent over HTTP so far: each must leave one access line.
    sent: usize,
}

impl Server {
    async fn start(database_url: &str, log: &Path) -> Server {
        let child = logging_command(database_url, log)
            .args(["serve", "--bind-addr", "127.0.0.1:0", "--workers", "1"])
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut server = Server {
            child,
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

    /// The port from the `admin-api-keys is serving ... port=N` line.
    async fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let port = log
                .lines()
                .find(|line| line.contains("admin-api-keys is serving"))
                .and_then(|line| line.split(" port=").nth(1))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|port| port.parse().ok());
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

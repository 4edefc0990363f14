//! A real Caddy, configured with `deploy/caddy/Caddyfile` as it stands (ports aside),
//! protecting its stand-in service with `forward_auth` to `/v1/forward-auth`.
//!
//! Without Caddy installed these tests pass with a note on stderr, except under `CI`, where
//! Caddy must be there (`.ci/run` installs Debian's package).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::project_keys::{member_key, member_of, project, value};

backend_tests!(
    without_a_good_key_caddy_answers_with_the_services_error_and_the_service_behind_never_sees_it,
    with_a_good_key_the_service_behind_learns_who_called_but_never_gets_the_key,
    a_path_needing_a_permission_refuses_keys_without_it,
    a_key_revoked_through_the_api_is_refused_on_the_very_next_request,
    a_project_keys_project_and_owner_reach_the_service_behind,
);

const CADDY: &str = "/usr/bin/caddy";
const KEYS: &str = "/v1/organization/admin_api_keys";

/// Caddy running the repository's Caddyfile in a scratch directory, stopped when dropped.
struct Caddy {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Caddy {
    /// Starts Caddy in front of the service on `service`; `None` (with a note) if Caddy is
    /// not installed and this is not CI.
    fn start(service: u16) -> Option<Caddy> {
        if !Path::new(CADDY).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "Caddy is not installed at {CADDY}; .ci/run installs it"
            );
            eprintln!("note: {CADDY} is missing, so the Caddy tests check nothing here");
            return None;
        }
        // A port probed free may be taken before Caddy binds it: try again with others.
        for _ in 0..5 {
            if let Some(caddy) = Self::try_start(service) {
                return Some(caddy);
            }
        }
        panic!("Caddy did not start on free ports in five attempts");
    }

    fn try_start(service: u16) -> Option<Caddy> {
        let dir = tempfile::tempdir().unwrap();
        let (front, behind) = (free_port(), free_port());
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/caddy/Caddyfile"),
        )
        .unwrap();
        let text = text
            .replace(":8000 {", &format!(":{front} {{"))
            .replace(":9000 {", &format!(":{behind} {{"))
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{service}"))
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{behind}"));
        let config = dir.path().join("Caddyfile");
        std::fs::write(&config, text).unwrap();
        let child = Command::new(CADDY)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            // Caddy keeps its data and config under these; a scratch directory, not ~.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Caddy starts");
        let mut caddy = Caddy {
            child,
            base: format!("http://127.0.0.1:{front}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while [front, behind]
            .iter()
            .any(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_err())
        {
            if !matches!(caddy.child.try_wait(), Ok(None)) {
                return None;
            }
            assert!(Instant::now() < deadline, "Caddy did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(caddy)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn service_port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A key with `permissions`: (id, secret).
async fn key_with(app: &TestApp, permissions: &[&str]) -> (String, String) {
    let made = app
        .create_key(json!({
            "name": "calls the service behind Caddy",
            "scopes": ["admin_api_keys.read"],
            "permissions": permissions,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

/// GET `path` through Caddy with `key` (if any) and `headers`: status and body.
async fn through(
    caddy: &Caddy,
    key: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(caddy.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The stand-in service's answer as `name=value` pairs.
fn seen(body: &str) -> Vec<(String, String)> {
    body.split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {pairs:?}"))
}

async fn without_a_good_key_caddy_answers_with_the_services_error_and_the_service_behind_never_sees_it(
    app: TestApp,
) {
    let Some(caddy) = Caddy::start(service_port(&app)) else {
        return;
    };
    for key in [None, Some("sk-admin-made-up")] {
        let (status, body) = through(&caddy, key, "/anything", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        let error: Value = serde_json::from_str(&body).expect("the service's JSON error");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
        assert!(
            !body.contains("key="),
            "the service behind answered: {body}"
        );
    }
}

async fn with_a_good_key_the_service_behind_learns_who_called_but_never_gets_the_key(app: TestApp) {
    let Some(caddy) = Caddy::start(service_port(&app)) else {
        return;
    };
    let (id, secret) = key_with(&app, &["reports:read"]).await;
    // Identity headers of the client's own are never believed.
    let forged = [
        ("x-api-key-id", "key_forged"),
        ("x-api-key-project-id", "proj_forged"),
        ("x-api-key-permissions", "*"),
    ];
    let (status, body) = through(&caddy, Some(&secret), "/reports/2026", &forged).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let pairs = seen(&body);
    assert_eq!(field(&pairs, "key"), id);
    assert_eq!(field(&pairs, "owner"), app.owner_id);
    assert_eq!(field(&pairs, "type"), "user");
    assert_eq!(field(&pairs, "project"), "", "an admin key has no project");
    assert_eq!(field(&pairs, "scopes"), "admin_api_keys.read");
    assert_eq!(field(&pairs, "authorization"), "", "the key stays at Caddy");
    assert!(!body.contains(&secret[12..]), "{body}");
    assert_eq!(field(&pairs, "path"), "/reports/2026");
}

async fn a_path_needing_a_permission_refuses_keys_without_it(app: TestApp) {
    let Some(caddy) = Caddy::start(service_port(&app)) else {
        return;
    };
    let (_, reports) = key_with(&app, &["reports:read"]).await;
    let (_, billing) = key_with(&app, &["billing:*"]).await;

    let (status, body) = through(&caddy, Some(&reports), "/billing/invoices", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "missing_permission", "{body}");
    let (status, body) = through(&caddy, Some(&billing), "/billing/invoices", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Elsewhere any good key passes; a client's own X-Required-Permission changes nothing.
    let wants_more = [("x-required-permission", "admin:everything")];
    let (status, body) = through(&caddy, Some(&reports), "/reports", &wants_more).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nor does a query of the client's reach the check.
    let query = "/reports?permission=admin:everything&project=proj_nosuchprojectexists000001";
    let (status, body) = through(&caddy, Some(&reports), query, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_key_revoked_through_the_api_is_refused_on_the_very_next_request(app: TestApp) {
    let Some(caddy) = Caddy::start(service_port(&app)) else {
        return;
    };
    let (id, secret) = key_with(&app, &[]).await;
    assert_eq!(
        through(&caddy, Some(&secret), "/a", &[]).await.0,
        StatusCode::OK
    );

    let revoked = app.delete(&format!("{KEYS}/{id}")).await;
    assert_eq!(revoked.status(), StatusCode::OK);

    let (status, body) = through(&caddy, Some(&secret), "/a", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn a_project_keys_project_and_owner_reach_the_service_behind(app: TestApp) {
    let Some(caddy) = Caddy::start(service_port(&app)) else {
        return;
    };
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &["chat:*"]).await;

    let (status, body) = through(&caddy, Some(value(&key)), "/v1/models", &[]).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let pairs = seen(&body);
    assert_eq!(field(&pairs, "key"), key["id"].as_str().unwrap());
    assert_eq!(field(&pairs, "owner"), user);
    assert_eq!(field(&pairs, "type"), "user");
    assert_eq!(field(&pairs, "project"), project);
    assert_eq!(field(&pairs, "scopes"), "chat:*");
}

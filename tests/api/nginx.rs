//! A real nginx, configured with `deploy/nginx/forward-auth.conf` as the README shows it,
//! protecting a small upstream with `auth_request` to `/v1/forward-auth`.
//!
//! Without nginx installed these tests pass with a note on stderr, except under `CI`, where
//! nginx must be there (`.ci/run` installs it).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, read};

backend_tests!(
    without_a_good_key_nginx_refuses_and_the_upstream_never_sees_the_request,
    with_a_good_key_the_upstream_answers_and_sees_who_called,
    a_location_needing_a_permission_refuses_keys_without_it,
    a_key_revoked_through_the_api_is_refused_on_the_very_next_request,
    the_minimal_config_in_the_readme_runs_on_its_own,
    a_project_key_reaches_the_model_server_until_its_rate_limit_then_gets_openais_429,
    the_openai_python_sdk_gets_a_completion_and_then_rate_limit_error,
);

const NGINX: &str = "/usr/sbin/nginx";
const KEYS: &str = "/v1/organization/admin_api_keys";

/// An nginx running the repository's config in a scratch directory, stopped when dropped.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:<port>`, where clients call the protected service.
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in front of the service on `service_port`, with the echo upstream behind
    /// it; `None` (with a note) if nginx is not installed and this is not CI.
    pub fn start(service_port: u16) -> Option<Nginx> {
        Self::start_with(service_port, write_full_config)
    }

    /// Starts nginx with the config `write` puts in the scratch directory (as `nginx.conf`),
    /// given it and the ports; `None` as for [`Nginx::start`].
    fn start_with(service_port: u16, write: fn(&Path, Ports) -> ()) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx is not installed at {NGINX}; .ci/run installs it"
            );
            eprintln!("note: {NGINX} is missing, so the nginx tests check nothing here");
            return None;
        }
        // A free port may be taken by another test between our probe and nginx's bind; nginx
        // then exits at once, and we try again with other ports (rather than talk to whoever
        // holds the port).
        for _ in 0..5 {
            if let Some(nginx) = Self::try_start(service_port, write) {
                return Some(nginx);
            }
        }
        panic!("nginx did not start on free ports in five attempts");
    }

    fn try_start(service: u16, write: fn(&Path, Ports) -> ()) -> Option<Nginx> {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports {
            service,
            proxy: free_port(),
            upstream: free_port(),
        };
        write(dir.path(), ports);
        let proxy_port = ports.proxy;
        // Workers run as an unprivileged user when the tests run as root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx {
            child,
            base: format!("http://127.0.0.1:{proxy_port}"),
            _dir: dir,
        };
        if !nginx.wait_until_listening(proxy_port) {
            return None;
        }
        // Still running a moment after the port answers: the listener is nginx's own.
        std::thread::sleep(Duration::from_millis(100));
        match nginx.child.try_wait() {
            Ok(None) => Some(nginx),
            _ => None,
        }
    }

    /// Waits until something listens on `port`; false if nginx exited first.
    fn wait_until_listening(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers before it exits; SIGKILL alone (what
        // `Child::kill` sends) leaves the workers running, orphaned, with their sockets.
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports of one nginx: the service's, where clients call, and the stand-in upstream's.
#[derive(Clone, Copy)]
struct Ports {
    service: u16,
    proxy: u16,
    upstream: u16,
}

/// `ports` in place of those a config from `deploy/nginx` names.
fn with_ports(text: &str, ports: Ports) -> String {
    text.replace(
        "server 127.0.0.1:8080;",
        &format!("server 127.0.0.1:{};", ports.service),
    )
    .replace("127.0.0.1:9000", &format!("127.0.0.1:{}", ports.upstream))
    .replace(
        "listen 127.0.0.1:8000;",
        &format!("listen 127.0.0.1:{};", ports.proxy),
    )
}

/// The README's full setup: forward-auth.conf and the echo upstream in a main config.
fn write_full_config(dir: &Path, ports: Ports) {
    for file in [
        "forward-auth.conf",
        "forward-auth-pass.conf",
        "forward-auth-check.conf",
        "echo-upstream.conf",
    ] {
        let text = std::fs::read_to_string(deploy().join(file)).unwrap();
        std::fs::write(dir.join(file), with_ports(&text, ports)).unwrap();
    }
    let root = dir.display();
    let main = format!(
        "worker_processes 1;\n\
         pid {root}/nginx.pid;\n\
         error_log {root}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
             access_log off;\n\
             client_body_temp_path {root}/body;\n\
             proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n\
             uwsgi_temp_path {root}/uwsgi;\n\
             scgi_temp_path {root}/scgi;\n\
             include forward-auth.conf;\n\
             include echo-upstream.conf;\n\
         }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
}

/// deploy/nginx/minimal.conf as it stands, only its ports changed.
fn write_minimal_config(dir: &Path, ports: Ports) {
    let text = std::fs::read_to_string(deploy().join("minimal.conf")).unwrap();
    std::fs::write(dir.join("nginx.conf"), with_ports(&text, ports)).unwrap();
}

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx")
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
            "name": "calls the upstream",
            "scopes": ["admin_api_keys.read"],
            "permissions": permissions,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

/// GET `path` through nginx with `key` (if any) as bearer token: status and body.
async fn through(nginx: &Nginx, key: Option<&str>, path: &str) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(nginx.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn without_a_good_key_nginx_refuses_and_the_upstream_never_sees_the_request(app: TestApp) {
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let response = reqwest::get(nginx.url("/anything")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer",
        "nginx passes the challenge on"
    );
    assert!(!response.text().await.unwrap().contains("upstream saw"));
    let (status, body) = through(&nginx, Some("sk-admin-made-up"), "/anything").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("upstream saw"));
}

async fn with_a_good_key_the_upstream_answers_and_sees_who_called(app: TestApp) {
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let (id, value) = key_with(&app, &["reports:read"]).await;
    let (status, body) = through(&nginx, Some(&value), "/reports/2026?page=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(&format!("key={id} owner={} ", app.owner_id)),
        "{body}"
    );
    assert!(
        body.contains("scopes=admin_api_keys.read permissions=reports:read"),
        "{body}"
    );
    assert!(
        body.contains("uri=/reports/2026?page=2 host=127.0.0.1 "),
        "{body}"
    );
    assert!(
        body.contains("authorization=[] x-api-key=[]") && !body.contains(&value[12..]),
        "the upstream never sees the admin key: {body}"
    );

    // The `X-Api-Key` header works too, and a client cannot forge the identity headers.
    let response = reqwest::Client::new()
        .post(nginx.url("/upload"))
        .header("x-api-key", &value)
        .header("x-api-key-id", "key_forged")
        .header("x-api-key-permissions", "*")
        .body("a body nginx does not send to the check")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!("key={id} ")), "{body}");
    assert!(body.contains("permissions=reports:read "), "{body}");
    assert!(!body.contains(&value[12..]), "{body}");

    // A key without permissions cannot claim some: the empty value replaces the client's.
    let (_, bare) = key_with(&app, &[]).await;
    let response = reqwest::Client::new()
        .get(nginx.url("/x"))
        .bearer_auth(&bare)
        .header("x-api-key-permissions", "*")
        .header("x-api-key-scopes", "admin_api_keys.write")
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert!(
        body.contains("scopes=admin_api_keys.read permissions= uri="),
        "{body}"
    );

    // The upstream's own failure reaches the client as it was sent.
    let (status, body) = through(&nginx, Some(&value), "/fail").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, "the upstream itself failed\n");
}

async fn a_location_needing_a_permission_refuses_keys_without_it(app: TestApp) {
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let (_, reports) = key_with(&app, &["reports:read"]).await;
    let (_, billing) = key_with(&app, &["billing:*"]).await;
    let (status, _) = through(&nginx, Some(&reports), "/billing/invoices").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = through(&nginx, Some(&billing), "/billing/invoices").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A client's own X-Required-Permission does not reach the check.
    let response = reqwest::Client::new()
        .get(nginx.url("/billing/invoices"))
        .bearer_auth(&billing)
        .header("x-required-permission", "something:else")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn a_key_revoked_through_the_api_is_refused_on_the_very_next_request(app: TestApp) {
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let (id, value) = key_with(&app, &["billing:read"]).await;
    assert_eq!(
        through(&nginx, Some(&value), "/billing/x").await.0,
        StatusCode::OK
    );
    let update = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "permissions": [] }))
        .await;
    assert_eq!(update.status(), StatusCode::OK);
    assert_eq!(
        through(&nginx, Some(&value), "/billing/x").await.0,
        StatusCode::FORBIDDEN,
        "permission revoked"
    );
    assert_eq!(through(&nginx, Some(&value), "/x").await.0, StatusCode::OK);

    let disable = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": false }))
        .await;
    assert_eq!(disable.status(), StatusCode::OK);
    assert_eq!(
        through(&nginx, Some(&value), "/x").await.0,
        StatusCode::UNAUTHORIZED,
        "disabled"
    );
    let enable = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": true }))
        .await;
    assert_eq!(enable.status(), StatusCode::OK);
    assert_eq!(through(&nginx, Some(&value), "/x").await.0, StatusCode::OK);

    let member = app.add_member("owner").await;
    let (_, theirs) = app.key_for(&member, Some(&["admin_api_keys.read"])).await;
    assert_eq!(through(&nginx, Some(&theirs), "/x").await.0, StatusCode::OK);
    let off = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "enabled": false }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(
        through(&nginx, Some(&theirs), "/x").await.0,
        StatusCode::UNAUTHORIZED,
        "owner disabled"
    );

    assert_eq!(
        app.delete(&format!("{KEYS}/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        through(&nginx, Some(&value), "/x").await.0,
        StatusCode::UNAUTHORIZED,
        "deleted"
    );
}

/// On PostgreSQL, a key disabled through another replica is refused through nginx (which
/// talks to the first replica, serving from its cache) within a second.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_key_disabled_through_another_replica_is_refused_within_a_second() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let other = app.spawn_replica().await;
    let (id, value) = key_with(&app, &[]).await;
    assert_eq!(through(&nginx, Some(&value), "/x").await.0, StatusCode::OK);
    let disable = other
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": false }))
        .await;
    assert_eq!(disable.status(), StatusCode::OK);
    let changed = Instant::now();
    loop {
        let (status, _) = through(&nginx, Some(&value), "/x").await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "still let through after a second"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "refused through nginx {:?} after the other replica's change",
        changed.elapsed()
    );
}

mod rate_limited {
    use admin_api_keys::config::Settings;
    use reqwest::StatusCode;

    use super::{Nginx, service_port};
    use crate::helpers::TestApp;

    backend_tests!(settings = a_tight_limit; too_many_unknown_keys_get_a_429_with_retry_after);

    fn a_tight_limit(settings: &mut Settings) {
        settings.lookup_limit.burst = 2;
        settings.lookup_limit.per_minute = 1;
        settings.trusted_proxies = "127.0.0.1".parse().unwrap();
    }

    /// nginx turns any answer but 2xx, 401 and 403 into a 500; the config passes the 429 on.
    async fn too_many_unknown_keys_get_a_429_with_retry_after(app: TestApp) {
        let Some(nginx) = Nginx::start(service_port(&app)) else {
            return;
        };
        // Only while the set of live hashes cannot vouch for absences (a listener that is
        // down) do unknown keys reach the budget; otherwise they are a plain 401.
        app.state.cache.doubt_key_set(true);
        let invented = || {
            admin_api_keys::domain::secret::generate_key()
                .expose()
                .to_owned()
        };
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let response = reqwest::Client::new()
                .get(nginx.url("/x"))
                .bearer_auth(invented())
                .send()
                .await
                .unwrap();
            statuses.push(response.status());
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
            }
        }
        assert_eq!(
            statuses,
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS
            ]
        );
    }
}

/// The README's nginx block, which must be deploy/nginx/minimal.conf word for word.
#[test]
fn the_readmes_nginx_core_is_the_minimal_config() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let minimal = std::fs::read_to_string(deploy().join("minimal.conf")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```nginx\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(
        blocks,
        [minimal.as_str()],
        "the README's nginx block drifted"
    );
}

async fn the_minimal_config_in_the_readme_runs_on_its_own(app: TestApp) {
    let Some(nginx) = Nginx::start_with(service_port(&app), write_minimal_config) else {
        return;
    };
    let (id, billing) = key_with(&app, &["billing:*"]).await;
    let (_, reports) = key_with(&app, &["reports:read"]).await;
    let cases = [
        (None, StatusCode::UNAUTHORIZED, "no key"),
        (
            Some("sk-admin-made-up"),
            StatusCode::UNAUTHORIZED,
            "an invented key",
        ),
        (
            Some(reports.as_str()),
            StatusCode::FORBIDDEN,
            "a key without billing:read",
        ),
    ];
    for (key, status, why) in cases {
        let (got, body) = through(&nginx, key, "/billing/invoices").await;
        assert_eq!(got, status, "{why}: {body}");
        assert!(!body.contains("upstream saw"), "{why}: {body}");
    }
    let (status, body) = through(&nginx, Some(&billing), "/billing/invoices").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, format!("upstream saw key={id}\n"));
}

async fn a_project_key_reaches_the_model_server_until_its_rate_limit_then_gets_openais_429(
    app: TestApp,
) {
    use crate::project_keys::{PROJECTS, member_key, member_of, project, value};
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    let call = || {
        reqwest::Client::new()
            .get(nginx.url("/v1/chat/completions"))
            .bearer_auth(value(&key))
            // What a client says about its model does not choose the budget.
            .header("x-model", "some-other-model")
            .send()
    };

    let first = call().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["x-ratelimit-limit-requests"],
        "600",
        "the default"
    );
    let body = first.text().await.unwrap();
    assert!(
        body.contains(&format!("project=[{project}] owner_type=[user]")),
        "the upstream sees the project: {body}"
    );

    // The location's model was seen at the first check, so its limit can be lowered: one
    // request made, one left.
    let limit = format!("{PROJECTS}/{project}/rate_limits/rl-gpt-4o-mini");
    let (status, body) = read(
        app.post_json(&limit, &json!({ "max_requests_per_1_minute": 2 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = call().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["x-ratelimit-remaining-requests"], "0");
    let third = call().await.unwrap();

    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["x-ratelimit-limit-requests"], "2");
    assert_eq!(third.headers()["x-ratelimit-remaining-requests"], "0");
    assert!(third.headers().contains_key("retry-after"));
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");

    // Archiving the project stops its keys on the next request.
    let (status, body) = read(
        app.post_json(&format!("{PROJECTS}/{project}/archive"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(call().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// The Python interpreter with the `openai` SDK: `OPENAI_SDK_PYTHON`, else `python3`; `None`
/// (with a note) when it cannot import `openai` and this is not CI (`.ci/run` installs it).
fn python_with_openai() -> Option<String> {
    let python = std::env::var("OPENAI_SDK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&python)
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import the openai SDK; .ci/run installs it"
    );
    eprintln!("note: no Python with the openai SDK, so the SDK test checks nothing here");
    None
}

async fn the_openai_python_sdk_gets_a_completion_and_then_rate_limit_error(app: TestApp) {
    use crate::project_keys::{PROJECTS, member_key, member_of, project, value};
    let Some(python) = python_with_openai() else {
        return;
    };
    let Some(nginx) = Nginx::start(service_port(&app)) else {
        return;
    };
    let mut keys = Vec::new();
    for _ in 0..2 {
        let project = project(&app).await;
        let user = member_of(&app, &project).await;
        let key = member_key(&app, &project, &user, &[]).await;
        keys.push((project, value(&key).to_owned()));
    }
    // The second project spends its one request a minute for the location's model.
    let (spent_project, spent_key) = &keys[1];
    let (status, _) = through(&nginx, Some(spent_key), "/v1/models").await;
    assert_eq!(status, StatusCode::OK, "the model's first sight");
    let limit = format!("{PROJECTS}/{spent_project}/rate_limits/rl-gpt-4o-mini");
    let (status, body) = read(
        app.post_json(&limit, &json!({ "max_requests_per_1_minute": 1 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_through_nginx.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .arg(nginx.url("/v1"))
        .arg(&keys[0].1)
        .arg(spent_key)
        .output()
        .await
        .expect("python runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
}

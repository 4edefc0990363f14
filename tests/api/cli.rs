//! The break-glass CLI, run as the real binary on the test app's database: keys and users
//! listed, shown and changed with no admin key, recorded with a `session` actor, refused by
//! the lock-out guard unless `--force`; `bootstrap`'s key options; `healthcheck`; and the
//! SQLite file's absolute path in the log.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, read};

backend_tests!(
    the_cli_lists_shows_disables_enables_and_deletes_keys_as_a_session,
    the_cli_refuses_to_disable_the_last_admin_key_unless_forced,
    the_cli_lists_disables_and_enables_users_and_guards_the_last_owner,
    bootstrap_gives_the_new_key_the_scopes_permissions_and_lifetime_asked_for,
    bootstrap_refuses_unknown_scopes_and_out_of_range_lifetimes_with_one_line,
    healthcheck_exits_zero_on_a_ready_server_and_non_zero_on_a_closed_port_or_a_silent_one,
);

const BINARY: &str = env!("CARGO_BIN_EXE_admin-api-keys");

/// Runs the binary with `args` on `database_url` (without blocking the test's server).
async fn run(database_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("ADMIN_API_KEYS_AS_USER")
        .output()
        .await
        .expect("the binary runs")
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(app: &TestApp, args: &[&str]) -> String {
    let output = run(&app.database_url, args).await;
    assert!(output.status.success(), "{args:?} failed: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs a command with `--json` that must succeed; returns what it printed.
async fn json(app: &TestApp, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&ok(app, &args).await).expect("--json prints JSON")
}

/// Runs a command that must fail; returns its last line on stderr (the error).
async fn refused(app: &TestApp, args: &[&str]) -> String {
    let output = run(&app.database_url, args).await;
    assert!(!output.status.success(), "{args:?} succeeded: {output:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: "), "{stderr}");
    last
}

async fn api(app: &TestApp, path: &str) -> Value {
    let (status, body) = read(app.get(path).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn the_cli_lists_shows_disables_enables_and_deletes_keys_as_a_session(app: TestApp) {
    let key = app.create_named("break glass").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/organization/admin_api_keys/{key}");
    let as_user = ["--as-user", app.owner_id.as_str()];

    // Listing and showing: a table by default, the API's objects with --json.
    let table = ok(&app, &["keys", "list"]).await;
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&key) && table.contains(&app.admin_key_id),
        "{table}"
    );
    assert!(
        table.contains("break glass") && table.contains("active"),
        "{table}"
    );
    let listed = json(&app, &["keys", "list"]).await;
    assert_eq!(listed["object"], "list");
    let ours: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == key.as_str())
        .collect();
    assert_eq!(ours, [&api(&app, &path).await]);
    assert_eq!(
        json(&app, &["keys", "show", &key]).await,
        api(&app, &path).await
    );

    // Disable, enable, delete.
    let disabled = json(&app, &[&["keys", "disable", &key][..], &as_user].concat()).await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["id"], key.as_str());
    let shown = ok(&app, &[&["keys", "enable", &key][..], &as_user].concat()).await;
    assert!(shown.contains(&key) && shown.contains("active"), "{shown}");
    let deleted = json(&app, &[&["keys", "delete", &key][..], &as_user].concat()).await;
    assert_eq!(deleted["id"], key.as_str());
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["object"], "organization.admin_api_key.deleted");
    let gone = refused(&app, &["keys", "show", &key]).await;
    assert!(gone.contains("No admin API key with id"), "{gone}");
    let unknown_user = refused(
        &app,
        &[
            "keys",
            "delete",
            &app.admin_key_id,
            "--as-user",
            "user_nobody",
        ],
    )
    .await;
    assert!(unknown_user.contains("No user"), "{unknown_user}");

    // Each change is in the audit log, by a session naming the --as-user user.
    let logs = api(
        &app,
        &format!(
            "/v1/organization/audit_logs?actor_ids[]={}&limit=100",
            app.owner_id
        ),
    )
    .await;
    let mut entries: Vec<(String, Value)> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry[entry["type"].as_str().unwrap()]["id"] == key.as_str())
        .map(|entry| {
            (
                entry["type"].as_str().unwrap().to_owned(),
                entry["actor"].clone(),
            )
        })
        .collect();
    // Entries of the same second are ordered by id, not by when they were made.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let types: Vec<&str> = entries.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["api_key.deleted", "api_key.updated", "api_key.updated"]
    );
    for (_, actor) in &entries {
        assert_eq!(actor["type"], "session", "{actor}");
        assert_eq!(actor["session"]["user"]["id"], app.owner_id.as_str());
        assert_eq!(actor["session"]["user"]["email"], "owner@example.com");
    }
}

async fn the_cli_refuses_to_disable_the_last_admin_key_unless_forced(app: TestApp) {
    let last = app.admin_key_id.as_str();
    let as_user = ["--as-user", app.owner_id.as_str()];
    for verb in ["disable", "delete"] {
        let error = refused(&app, &[&["keys", verb, last][..], &as_user].concat()).await;
        assert!(
            error.contains("last_admin_key") && error.contains("--force"),
            "{error}"
        );
    }
    assert_eq!(json(&app, &["keys", "show", last]).await["enabled"], true);

    let forced = json(
        &app,
        &[&["keys", "disable", last, "--force"][..], &as_user].concat(),
    )
    .await;
    assert_eq!(forced["enabled"], false);
    assert_eq!(json(&app, &["keys", "show", last]).await["enabled"], false);
    // The running server hears of it within a second (SQLite: its watcher; PostgreSQL: the
    // triggers), though the key was cached there.
    let since = std::time::Instant::now();
    loop {
        let status = app.get("/v1/organization/admin_api_keys").await.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(1),
            "the server still accepts the key the CLI disabled"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn the_cli_lists_disables_and_enables_users_and_guards_the_last_owner(app: TestApp) {
    let member = app.add_member("reader").await;
    let path = format!("/v1/organization/users/{member}");
    let as_user = ["--as-user", app.owner_id.as_str()];

    let table = ok(&app, &["users", "list"]).await;
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&member) && table.contains("owner@example.com"),
        "{table}"
    );
    let listed = json(&app, &["users", "list"]).await;
    let ours: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["id"] == member.as_str())
        .collect();
    assert_eq!(ours, [&api(&app, &path).await]);

    let disabled = json(
        &app,
        &[&["users", "disable", &member][..], &as_user].concat(),
    )
    .await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(api(&app, &path).await["enabled"], false);
    let enabled = json(
        &app,
        &[&["users", "enable", &member][..], &as_user].concat(),
    )
    .await;
    assert_eq!(enabled["enabled"], true);

    let owner = app.owner_id.as_str();
    let error = refused(&app, &[&["users", "disable", owner][..], &as_user].concat()).await;
    assert!(error.contains("last_owner"), "{error}");
    let unknown = refused(
        &app,
        &[&["users", "enable", "user_nobody"][..], &as_user].concat(),
    )
    .await;
    assert!(unknown.contains("No user"), "{unknown}");

    let logs = api(
        &app,
        &format!("/v1/organization/audit_logs?event_types[]=user.updated&resource_ids[]={member}"),
    )
    .await;
    let actors: Vec<&Value> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["actor"]["type"])
        .collect();
    assert_eq!(actors, ["session", "session"], "{logs}");
}

async fn bootstrap_gives_the_new_key_the_scopes_permissions_and_lifetime_asked_for(app: TestApp) {
    let output = run(
        &app.database_url,
        &[
            "bootstrap",
            "--owner-name",
            "Second Owner",
            "--scopes",
            "admin_api_keys.read,users.read",
            "--permissions",
            "billing:read,reports/*",
            "--expires-in-seconds",
            "600",
        ],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    // Only the key on stdout.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("sk-admin-"), "the key's value");

    let listed = json(&app, &["keys", "list"]).await;
    let key = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["owner"]["name"] == "Second Owner")
        .expect("the new owner's key is listed");
    assert_eq!(
        key["scopes"],
        serde_json::json!(["admin_api_keys.read", "users.read"])
    );
    assert_eq!(
        key["permissions"],
        serde_json::json!(["billing:read", "reports/*"])
    );
    let lifetime = key["expires_at"].as_i64().unwrap() - key["created_at"].as_i64().unwrap();
    assert_eq!(lifetime, 600);
    // Nothing on stdout reveals a secret: the listing holds redacted values only.
    assert!(!ok(&app, &["keys", "list"]).await.contains(stdout.trim()));
}

async fn bootstrap_refuses_unknown_scopes_and_out_of_range_lifetimes_with_one_line(app: TestApp) {
    let cases: [(&[&str], &str); 4] = [
        (&["--scopes", "admin_api_keys.read,everything"], "--scopes"),
        (&["--permissions", "bad permission"], "--permissions"),
        (&["--expires-in-seconds", "0"], "--expires-in-seconds"),
        (
            &["--expires-in-seconds", "31536001"],
            "--expires-in-seconds",
        ),
    ];
    for (flags, named) in cases {
        let args = [&["bootstrap", "--owner-name", "Nobody"][..], flags].concat();
        let error = refused(&app, &args).await;
        assert!(error.contains(named), "{flags:?}: {error}");
        assert!(
            !error.contains("everything") && !error.contains("bad permission"),
            "{error}"
        );
    }
    let owners = json(&app, &["users", "list"]).await;
    assert_eq!(
        owners["data"].as_array().unwrap().len(),
        1,
        "nothing was made"
    );
}

async fn healthcheck_exits_zero_on_a_ready_server_and_non_zero_on_a_closed_port_or_a_silent_one(
    app: TestApp,
) {
    let bind = app.address.trim_start_matches("http://");
    let up = run(&app.database_url, &["healthcheck", "--bind-addr", bind]).await;
    assert!(up.status.success(), "{up:?}");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let output = tokio::process::Command::new(BINARY)
        .args(["healthcheck", "--timeout-secs", "2"])
        .env("BIND_ADDR", &closed)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot connect to 127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A listener that never answers: refused after the timeout, not waited on for ever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let output = tokio::process::Command::new(BINARY)
        .args([
            "healthcheck",
            "--timeout-secs",
            "1",
            "--bind-addr",
            &silent_addr,
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("did not answer within 1s"), "{stderr}");
    drop(silent);
}

#[actix_web::test]
async fn a_relative_sqlite_path_is_logged_as_absolute_and_a_new_file_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relative.db");
    let bootstrap = || {
        tokio::process::Command::new(BINARY)
            .args(["bootstrap", "--owner-name", "Ops"])
            .env("DATABASE_URL", "sqlite://relative.db")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .current_dir(dir.path())
            .output()
    };
    let first = bootstrap().await.unwrap();
    assert!(first.status.success(), "{first:?}");
    let log = String::from_utf8(first.stderr).unwrap();
    let created = format!("created a new database at {}", file.display());
    assert!(log.contains(&created), "{log}");

    let second = bootstrap().await.unwrap();
    assert!(second.status.success(), "{second:?}");
    let log = String::from_utf8(second.stderr).unwrap();
    assert!(
        log.contains(&format!("using the database at {}", file.display())),
        "{log}"
    );
    assert!(!log.contains("created a new database"), "{log}");

    // The server says the same at startup.
    let mut server = std::process::Command::new(BINARY)
        .env("DATABASE_URL", "sqlite://relative.db")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("WORKERS", "1")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = server.stderr.take().unwrap();
    let startup: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .take_while(|line| !line.contains("is serving"))
        .collect();
    let _ = server.kill();
    let _ = server.wait();
    let using = format!("using the database at {}", file.display());
    assert!(
        startup.iter().any(|line| line.contains(&using)),
        "{startup:?}"
    );
}

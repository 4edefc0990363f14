//! The official MCP Python SDK end to end: an MCP server over streamable HTTP
//! (tests/mcp/server.py, FastMCP) whose token verifier introspects each presented key against
//! this service and enforces the `mcp` policy it returns, driven by the SDK's own client
//! (tests/mcp/client.py) with project keys of different policies. `.ci/run` installs the SDK
//! (`mcp`, pinned) and points `MCP_SDK_PYTHON` at it; elsewhere, without it, the test checks
//! nothing and says so.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, read};
use crate::project_keys::{PROJECTS, member_of, project};

backend_tests!(the_mcp_sdk_client_gets_only_what_each_keys_policy_allows_from_the_sdk_server);

/// The Python interpreter with the `mcp` SDK: `MCP_SDK_PYTHON`, else `python3`; `None` (with
/// a note) when it cannot import `mcp` and this is not CI.
fn python_with_mcp() -> Option<String> {
    let python = std::env::var("MCP_SDK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&python)
        .args([
            "-c",
            "import mcp.server.fastmcp, mcp.client.streamable_http",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import the MCP SDK; .ci/run installs it"
    );
    eprintln!("note: no Python with the MCP SDK, so the MCP SDK test checks nothing here");
    None
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The MCP server, stopped when dropped.
struct McpServer {
    child: Child,
    url: String,
}

impl McpServer {
    fn start(python: &str, app: &TestApp, introspection_key: &str) -> McpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .arg(script("server.py"))
            .args(["--port", &port.to_string()])
            .args(["--introspect", &app.url("/v1/introspect")])
            .args(["--instance", "notes", "--project", "proj_notes"])
            .env("INTROSPECT_KEY", introspection_key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the MCP server starts");
        let server = McpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the MCP server never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One session of the SDK's client as `key`, calling `tools` each round.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn start(python: &str, server: &McpServer, key: &str, tools: &[&str], rounds: u32) -> Client {
        let mut child = Command::new(python)
            .arg(script("client.py"))
            .args([&server.url, key])
            .args(tools)
            .args(["--rounds", &rounds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the MCP client starts");
        Client {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    /// The next round's `{"tools", "calls"}` (after telling the client to go on, but for the
    /// first round).
    async fn round(mut self, go_on: bool) -> (Self, Value) {
        actix_web::rt::task::spawn_blocking(move || {
            if go_on {
                writeln!(self.stdin).unwrap();
                self.stdin.flush().unwrap();
            }
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            let round = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the client printed no round ({e}): {line:?}"));
            (self, round)
        })
        .await
        .unwrap()
    }

    async fn finish(mut self) {
        actix_web::rt::task::spawn_blocking(move || {
            drop(self.stdin);
            assert!(self.child.wait().unwrap().success(), "the client failed");
        })
        .await
        .unwrap();
    }
}

/// A key of a new member of `project` with `mcp`: its (id, value).
async fn key_with(app: &TestApp, project: &str, mcp: Value) -> (String, String) {
    let user = member_of(app, project).await;
    let path = format!("{PROJECTS}/{project}/api_keys");
    let body = json!({ "user_id": user, "name": "mcp client", "mcp": mcp });
    let (status, key) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

async fn one_round(python: &str, server: &McpServer, key: &str) -> Value {
    let client = Client::start(python, server, key, &["search_notes", "add_note"], 1);
    let (client, round) = client.round(false).await;
    client.finish().await;
    round
}

async fn the_mcp_sdk_client_gets_only_what_each_keys_policy_allows_from_the_sdk_server(
    app: TestApp,
) {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let introspector = app
        .create_key(json!({ "name": "MCP server", "scopes": ["keys.introspect"] }))
        .await;
    let server = McpServer::start(&python, &app, introspector["value"].as_str().unwrap());
    let project = project(&app).await;
    let both = json!(["add_note", "search_notes"]);

    let (_, full) = key_with(&app, &project, json!({})).await;
    let round = one_round(&python, &server, &full).await;
    assert_eq!(round["tools"], both, "{round}");
    assert_eq!(
        round["calls"],
        json!({ "search_notes": "ok", "add_note": "ok" })
    );

    let (_, reader) = key_with(&app, &project, json!({ "read_only": true })).await;
    let round = one_round(&python, &server, &reader).await;
    assert_eq!(
        round["tools"],
        json!(["search_notes"]),
        "only the read-only tool is listed"
    );
    assert_eq!(round["calls"]["search_notes"], "ok");
    assert_eq!(round["calls"]["add_note"], "mcp_read_only", "{round}");

    let (_, listed) = key_with(&app, &project, json!({ "tool_allowlist": ["add_*"] })).await;
    let round = one_round(&python, &server, &listed).await;
    assert_eq!(round["tools"], json!(["add_note"]));
    assert_eq!(
        round["calls"]["search_notes"], "mcp_tool_not_allowed",
        "{round}"
    );
    assert_eq!(round["calls"]["add_note"], "ok");

    let (_, elsewhere) = key_with(&app, &project, json!({ "instance_ids": ["wiki"] })).await;
    let round = one_round(&python, &server, &elsewhere).await;
    assert_eq!(round["tools"], json!([]));
    assert_eq!(round["calls"]["search_notes"], "mcp_instance_not_allowed");

    // A toggle through this API counts on the client's next call, in the same session.
    let (id, toggled) = key_with(&app, &project, json!({})).await;
    let client = Client::start(&python, &server, &toggled, &["search_notes"], 3);
    let (client, first) = client.round(false).await;
    assert_eq!(first["calls"]["search_notes"], "ok");
    let toggle = format!("{PROJECTS}/{project}/api_keys/{id}/mcp/toggle");
    let (status, paused) = read(app.post_json(&toggle, &json!({ "active": false })).await).await;
    assert_eq!(
        (status, &paused["mcp"]["active"]),
        (StatusCode::OK, &json!(false))
    );
    let (client, second) = client.round(true).await;
    assert_eq!(second["tools"], json!([]), "{second}");
    assert_eq!(second["calls"]["search_notes"], "mcp_paused");
    let (status, _) = read(app.post_json(&toggle, &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "an empty body flips it back");
    let (client, third) = client.round(true).await;
    assert_eq!(third["calls"]["search_notes"], "ok", "{third}");
    client.finish().await;
}

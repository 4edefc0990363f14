//! The README's session, run as a new user would paste it: every `sh` block from "First key"
//! up to the forward-auth section, in order, in one bash with `set -euo pipefail`, against the
//! real binary serving a fresh SQLite database. So the README cannot drift from the service:
//! a command that fails, an id that comes out `null`, or a call that answers an error the
//! README does not say it will, fails this test.
//!
//! Two things differ from a paste, both outside the blocks' text: the server listens on a
//! free port (each `127.0.0.1:8080` in a block is rewritten to it), and `cargo run --quiet --
//! ARGS` runs the binary this test was built with (a nested `cargo` would wait on the lock of
//! the `cargo test` that runs us). Needs bash, curl, jq and openssl; without them the test
//! passes with a note, except under `CI` (`.ci/run` installs jq).

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_admin-api-keys");
/// The session starts at this heading and ends before the next one (the nginx walk-through,
/// which needs nginx and fixed ports, is not part of it; `nginx.rs` runs the configs).
const FIRST: &str = "## First key";
const END: &str = "### Protecting your other services: forward auth";
/// The calls of the session that answer an error, in order, as the README says they do: a
/// reader's key writing (403), the disabled member's key (401), a spent rate limit (429) and
/// a paused key's MCP check (403). Any other non-2xx fails.
const EXPECTED_ERRORS: [&str; 4] = ["403", "401", "429", "403"];

/// The `sh` blocks between [`FIRST`] and [`END`], in order.
fn session_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n{FIRST}\n"))
        .unwrap_or_else(|| panic!("the README has no `{FIRST}` heading"));
    let end = readme[start..]
        .find(&format!("\n{END}\n"))
        .map(|end| start + end)
        .unwrap_or_else(|| panic!("the README has no `{END}` heading after `{FIRST}`"));
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an `sh` block is not closed");
    blocks
}

fn tools_missing() -> Option<&'static str> {
    ["bash", "curl", "jq", "openssl"].into_iter().find(|tool| {
        Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_or(true, |status| !status.success())
    })
}

/// The binary serving `database_url` on a free port; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(database_url: &str, log: &Path) -> Server {
        let child = Command::new(BINARY)
            .args(["serve", "--bind-addr", "127.0.0.1:0", "--workers", "1"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(log).unwrap())
            .spawn()
            .expect("the server starts");
        let mut server = Server { child, port: 0 };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.port == 0 {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find(|line| line.contains("admin-api-keys is serving"))
                .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("port=")))
            {
                server.port = port.trim().parse().expect("a port number");
                break;
            }
            let exited = server.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the server did not start ({exited:?}):\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What runs before the blocks: strict mode, `cargo run` as the built binary, and a `curl`
/// that reports each answer's status on stderr (the blocks' own output is left as it is).
const PRELUDE: &str = r#"set -euo pipefail
cargo() {
    if [ "$#" -ge 3 ] && [ "$1" = run ] && [ "$2" = --quiet ] && [ "$3" = -- ]; then
        shift 3
        "$README_BINARY" "$@"
    else
        echo "readme test: only \`cargo run --quiet -- ...\` is supported, not: cargo $*" >&2
        return 97
    fi
}
curl() { command curl --max-time 20 -w '%{stderr}readme-status %{http_code}\n' "$@"; }
"#;

#[test]
fn the_readme_session_runs_as_written_against_a_live_server() {
    if let Some(tool) = tools_missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing; .ci/run installs it"
        );
        eprintln!("note: {tool} is missing, so the README session is not run here");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = session_blocks(&readme);
    assert!(blocks.len() >= 10, "only {} blocks found", blocks.len());

    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}",
        dir.path().join("admin-api-keys.db").display()
    );
    let server = Server::start(&database_url, &dir.path().join("server.log"));
    let mut script = PRELUDE.to_owned();
    for block in &blocks {
        script.push_str(&block.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", server.port)));
    }
    let script_path = dir.path().join("session.sh");
    std::fs::write(&script_path, &script).unwrap();

    let mut session = Command::new("bash")
        .arg(&script_path)
        .current_dir(root)
        .env("DATABASE_URL", &database_url)
        .env("README_BINARY", BINARY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(File::create(dir.path().join("stdout")).unwrap())
        .stderr(File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("bash starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = session.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = session.kill();
            break session.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(
        status.success(),
        "the session stopped ({status}):\n{context}"
    );

    let statuses: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("readme-status "))
        .collect();
    assert!(statuses.len() >= 30, "too few calls ran:\n{context}");
    let errors: Vec<&str> = statuses
        .iter()
        .copied()
        .filter(|status| !status.starts_with('2'))
        .collect();
    assert_eq!(
        errors, EXPECTED_ERRORS,
        "calls answered errors the README does not announce:\n{context}"
    );
}

#[test]
fn the_session_blocks_are_found_in_order() {
    let readme = "intro\n```sh\nno\n```\n## First key\n```sh\na\n```\ntext\n```json\n{}\n```\n\
                  ```sh\nb\nc\n```\n### Protecting your other services: forward auth\n```sh\nz\n```\n";
    assert_eq!(session_blocks(readme), ["a\n", "b\nc\n"]);
}

//! Running a script of `tests/browser` (playwright-core driving Debian's headless Chromium)
//! against a test server. Without Chromium, Node or `npm ci` in `tests/browser` a browser test
//! passes with a note on stderr, except under `CI`, where they must be there (`.ci/run`
//! installs them).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take, start to end, before it is killed.
const BROWSER_TIME_LIMIT: Duration = Duration::from_secs(240);

pub struct BrowserSetup {
    dir: PathBuf,
    chromium: PathBuf,
}

impl BrowserSetup {
    /// Chromium, Node and `tests/browser/node_modules`; `None` (with a note naming `what` the
    /// test would have checked) when one is missing and this is not CI.
    pub fn find(what: &str) -> Option<BrowserSetup> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        let node = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        let missing = [
            (!chromium.exists(), "Chromium (apt-get install chromium)"),
            (!node, "Node.js"),
            (
                !dir.join("node_modules/playwright-core").exists(),
                "playwright-core (npm ci in tests/browser)",
            ),
            (
                !dir.join("node_modules/axe-core").exists(),
                "axe-core (npm ci in tests/browser)",
            ),
        ]
        .into_iter()
        .filter_map(|(missing, what)| missing.then_some(what))
        .collect::<Vec<_>>();
        if missing.is_empty() {
            return Some(BrowserSetup { dir, chromium });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser test needs {}; .ci/run installs them",
            missing.join(", ")
        );
        eprintln!(
            "note: the {what} browser test checks nothing here: {} missing",
            missing.join(", ")
        );
        None
    }

    /// Runs `node <script> <base>` in `tests/browser` under the time limit, with `env` set
    /// (secrets go there, not on the command line, so no process listing shows them); whether
    /// it exited 0, and its output.
    pub fn run(&self, script: &str, base: &str, env: &[(&str, &str)]) -> (bool, String) {
        let log = tempfile::tempfile().unwrap();
        let mut command = Command::new("node");
        command
            .arg(self.dir.join(script))
            .arg(base)
            .env("CHROMIUM", &self.chromium)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log.try_clone().unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("node starts");
        let deadline = Instant::now() + BROWSER_TIME_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut output = String::new();
        let mut log = log;
        std::io::Seek::rewind(&mut log).unwrap();
        log.read_to_string(&mut output).unwrap();
        match status {
            Some(status) => (status.success(), output),
            None => (
                false,
                format!("{output}\nkilled after {BROWSER_TIME_LIMIT:?}"),
            ),
        }
    }
}

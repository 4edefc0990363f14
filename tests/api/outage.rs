//! PostgreSQL goes away under light load and comes back: every request in between is a 503 in
//! the envelope with `Retry-After`, and within 2 s of the database accepting connections again
//! authenticated reads and writes answer 200 and another replica's changes reach this one's
//! cache again. (PostgreSQL only: SQLite cannot go away.)
//!
//! The shared PostgreSQL server is never stopped: the replica under test reaches it through a
//! TCP proxy in this file, which can cut every live connection and refuse new ones (accept and
//! close at once, as a server that is shutting down or starting up does), then open again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use admin_api_keys::db::PoolOptions;

use crate::helpers::{Backend, TestApp, read};

const PATH: &str = "/v1/organization/admin_api_keys";
/// How long the database stays away: long enough for any backoff to grow.
const OUTAGE: Duration = Duration::from_secs(10);
/// Clients sending requests throughout.
const CLIENTS: usize = 4;
/// The promise: healed this long after the database accepts connections again.
const RECOVERY: Duration = Duration::from_secs(2);
/// One request of each kind this often: light load.
const PACE: Duration = Duration::from_millis(50);

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards them.
    Up,
    /// Accepts and closes each at once, before the server says a word: a server that is down
    /// (refused) or shutting down or starting up.
    Refusing,
    /// Accepts and holds each without a word, until the proxy opens again and forwards it: a
    /// network that drops packets.
    Blackholing,
}

#[derive(Clone, Copy, Debug)]
struct State {
    mode: Mode,
    /// Bumped by each cut; a forwarded connection ends when it moves.
    cuts: u64,
}

/// A TCP proxy to PostgreSQL on a thread (and runtime) of its own.
struct Proxy {
    port: u16,
    state: watch::Sender<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free local port and forwards every connection to `upstream`.
    fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, _) = watch::channel(State {
            mode: Mode::Up,
            cuts: 0,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let states = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let state = states.subscribe();
                        match state.borrow().mode {
                            Mode::Refusing => continue,
                            Mode::Up | Mode::Blackholing => {}
                        }
                        tokio::spawn(forward(client, upstream, state));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Kills every live connection and treats new ones as `mode` says until [`Proxy::open`].
    fn cut(&self, mode: Mode) {
        self.state.send_modify(|state| {
            state.mode = mode;
            state.cuts += 1;
        });
    }

    /// Forwards connections again, held ones included.
    fn open(&self) {
        self.state.send_modify(|state| state.mode = Mode::Up);
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by this proxy's.
    fn url(&self, url: &str) -> String {
        let (start, end) = authority(url);
        let userinfo = url[start..end]
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!(
            "{}{userinfo}127.0.0.1:{}{}",
            &url[..start],
            self.port,
            &url[end..]
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards `client` to `upstream` once the proxy is up, until the next cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut state: watch::Receiver<State>) {
    let Ok(up) = state
        .wait_for(|state| state.mode == Mode::Up)
        .await
        .map(|s| *s)
    else {
        return;
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = state.wait_for(|state| state.cuts != up.cuts) => {}
    }
}

/// Where the authority (`user@host:port`) of a URL starts and ends.
fn authority(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    (start, end)
}

/// The address of the PostgreSQL server that `url` names.
fn upstream(url: &str) -> SocketAddr {
    let (start, end) = authority(url);
    let host_port = url[start..end]
        .rsplit_once('@')
        .map_or(&url[start..end], |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port
        .parse()
        .unwrap_or_else(|_| panic!("TEST_DATABASE_URL must name host:port, got {host_port}"))
}

/// A key with the read and write scopes: (id, value).
async fn full_key(app: &TestApp, name: &str) -> (String, String) {
    let key = app
        .create_key(json!({
            "name": name,
            "scopes": ["admin_api_keys.read", "admin_api_keys.write"],
        }))
        .await;
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

/// Whether `app` answers a retrieve of `id` with `key` without a database query (its cache is
/// trusted again, so its invalidation listener is back).
async fn served_from_cache(app: &TestApp, key: &str, id: &str) -> bool {
    let before = app.queries();
    let response = app
        .request_as(key, Method::GET, &format!("{PATH}/{id}"))
        .send()
        .await
        .unwrap();
    response.status() == StatusCode::OK && app.queries() == before
}

/// What one request of the load saw.
struct Seen {
    sent: Instant,
    answered: Instant,
    write: bool,
    status: StatusCode,
    /// Why the answer is not what a client may rely on, if it is not.
    wrong: Option<String>,
}

/// Light load: `clients` clients, each sending a read and a write (a rename) every [`PACE`]
/// until `stop` is set, recording what each saw.
fn load(
    app: &TestApp,
    renamed_id: &str,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> (
    Arc<Mutex<Vec<Seen>>>,
    Vec<actix_web::rt::task::JoinHandle<()>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..clients)
        .map(|client| {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(stop));
            let client_http = app.client.clone();
            let (address, key) = (app.address.clone(), app.admin_key.clone());
            let write_path = format!("{address}{PATH}/{renamed_id}");
            actix_web::rt::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    for write in [false, true] {
                        let request = if write {
                            client_http
                                .post(&write_path)
                                .json(&json!({ "name": format!("client {client} round {round}") }))
                        } else {
                            client_http.get(format!("{address}{PATH}?limit=1"))
                        };
                        let sent = Instant::now();
                        let response = request
                            .bearer_auth(&key)
                            .timeout(Duration::from_secs(30))
                            .send()
                            .await
                            .expect("the service answers");
                        let status = response.status();
                        let retry_after = response.headers().get("retry-after").cloned();
                        let body = response.text().await.unwrap_or_default();
                        let wrong = judge(status, retry_after.as_ref(), &body);
                        seen.lock().unwrap().push(Seen {
                            sent,
                            answered: Instant::now(),
                            write,
                            status,
                            wrong,
                        });
                    }
                    actix_web::rt::time::sleep(PACE).await;
                }
            })
        })
        .collect();
    (seen, tasks)
}

/// `None` for a 200, or a 503 in the envelope with `Retry-After`; else what is wrong.
fn judge(
    status: StatusCode,
    retry_after: Option<&reqwest::header::HeaderValue>,
    body: &str,
) -> Option<String> {
    match status {
        StatusCode::OK => None,
        StatusCode::SERVICE_UNAVAILABLE => {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
                return Some(format!("503 not in JSON: {body}"));
            };
            let code = &json["error"]["code"];
            if code != "service_unavailable" || retry_after.is_none_or(|v| v != "1") {
                Some(format!("503 without the envelope or Retry-After: {body}"))
            } else {
                None
            }
        }
        other => Some(format!("{other}: {body}")),
    }
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn after_a_database_outage_the_service_heals_within_two_seconds() {
    heals_after(Mode::Refusing).await;
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn after_a_network_outage_that_swallows_connections_the_service_heals_within_two_seconds() {
    heals_after(Mode::Blackholing).await;
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn after_a_quiet_outage_the_first_requests_succeed() {
    let Ok(server_url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let proxy = Proxy::start(upstream(&server_url));
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |settings| {
        settings.database_url = proxy.url(&settings.database_url);
        settings.pool = PoolOptions::default();
    })
    .await
    else {
        return;
    };
    let (renamed_id, _) = full_key(&app, "renamed after the outage").await;
    // Several connections in the pool, all of which the outage will kill.
    let first_page = format!("{PATH}?limit=1");
    let reads = (0..6).map(|_| app.get(&first_page));
    for response in futures_util::future::join_all(reads).await {
        assert_eq!(response.status(), StatusCode::OK);
    }

    // The database goes away and comes back while nobody asks anything.
    proxy.cut(Mode::Refusing);
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    proxy.open();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    // Whatever the pool kept from before is never handed to a request.
    for round in 0..3 {
        let (status, body) = read(app.get(&format!("{PATH}?limit=1")).await).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "read {round} after the outage: {body}"
        );
        let renamed = app
            .post_json(
                &format!("{PATH}/{renamed_id}"),
                &json!({ "name": format!("after the outage {round}") }),
            )
            .await;
        let (status, body) = read(renamed).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "write {round} after the outage: {body}"
        );
    }
}

/// Takes the database away for [`OUTAGE`] under light load, with new connections treated as
/// `mode` says, and checks every answer during it and the recovery after it.
async fn heals_after(mode: Mode) {
    let Ok(server_url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let proxy = Proxy::start(upstream(&server_url));
    // The defaults a deployment runs with, not the tests' short timeouts.
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |settings| {
        settings.database_url = proxy.url(&settings.database_url);
        settings.pool = PoolOptions::default();
        settings.workers = 2;
    })
    .await
    else {
        return;
    };
    // Another replica, straight to the database: it stays up and makes the change that must
    // reach the replica behind the proxy once that one is back.
    let other = app.spawn_replica().await;
    let (renamed_id, _) = full_key(&app, "renamed under load").await;
    let (watched_id, watched) = full_key(&app, "disabled by the other replica").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, clients) = load(&app, &renamed_id, CLIENTS, &stop);
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    // The database goes away for a while, then comes back.
    proxy.cut(mode);
    let down = Instant::now();
    actix_web::rt::time::sleep(OUTAGE).await;
    proxy.open();
    let back = Instant::now();

    // The first 200 on a read and on a write sent after it came back.
    let first_ok = |write: bool| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.write == write && s.sent >= back && s.status == StatusCode::OK)
            .map(|s| s.answered - back)
            .min()
    };
    while (first_ok(false).is_none() || first_ok(true).is_none()) && back.elapsed() < 5 * RECOVERY {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (read_ok, write_ok) = (first_ok(false), first_ok(true));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    // Invalidation resumes: the cache serves again, and a change on the other replica
    // reaches it.
    let mut cached = None;
    while back.elapsed() < 5 * RECOVERY {
        if served_from_cache(&app, &watched, &watched_id).await {
            cached = Some(back.elapsed());
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut invalidated = None;
    if cached.is_some() {
        let disable = other
            .post_json(
                &format!("{PATH}/{watched_id}"),
                &json!({ "enabled": false }),
            )
            .await;
        assert_eq!(disable.status(), StatusCode::OK);
        while back.elapsed() < 5 * RECOVERY {
            let response = app
                .request_as(&watched, Method::GET, &format!("{PATH}/{watched_id}"))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::UNAUTHORIZED {
                invalidated = Some(back.elapsed());
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let during: Vec<_> = seen
        .iter()
        .filter(|s| s.sent >= down + Duration::from_millis(100) && s.answered <= back)
        .collect();
    let slowest = during.iter().map(|s| s.answered - s.sent).max();
    eprintln!(
        "{mode:?} outage of {OUTAGE:?} under {CLIENTS} clients: {} requests answered during \
         it (slowest {slowest:?}); after the database came back: first read 200 at \
         {read_ok:?}, first write 200 at {write_ok:?}, cache trusted at {cached:?}, other \
         replica's change honoured at {invalidated:?}",
        during.len()
    );
    assert!(
        !during.is_empty(),
        "requests were answered during the outage"
    );
    let patience = Duration::from_secs(1);
    assert!(
        slowest.is_some_and(|slowest| slowest <= patience),
        "an outage is answered at once, not after the pool's acquire timeout: {slowest:?}"
    );
    for s in &during {
        assert_eq!(
            s.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "a request during the outage"
        );
    }
    let wrong: Vec<_> = seen.iter().filter_map(|s| s.wrong.as_deref()).collect();
    assert!(
        wrong.is_empty(),
        "answers a client cannot rely on: {wrong:?}"
    );
    for (what, took) in [
        ("an authenticated read", read_ok),
        ("an authenticated write", write_ok),
        ("the cache in use again", cached),
        ("another replica's change", invalidated),
    ] {
        let took = took.unwrap_or_else(|| panic!("{what}: never, after {:?}", 5 * RECOVERY));
        assert!(
            took <= RECOVERY,
            "{what} took {took:?} after the database came back (at most {RECOVERY:?})"
        );
    }

    // Healed for good: from 2 s after the database came back, nothing but 200s (a dead
    // connection left in the pool would still fail some).
    actix_web::rt::time::sleep(RECOVERY.saturating_sub(back.elapsed())).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (after, clients) = load(&app, &renamed_id, CLIENTS, &stop);
    actix_web::rt::time::sleep(RECOVERY).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let after = std::mem::take(&mut *after.lock().unwrap());
    let failed: Vec<_> = after
        .iter()
        .filter(|s| s.status != StatusCode::OK)
        .map(|s| (s.sent - back, s.status))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests sent from {RECOVERY:?} after the database came back failed: \
         {failed:?}",
        failed.len(),
        after.len()
    );
    let (status, ready) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
}

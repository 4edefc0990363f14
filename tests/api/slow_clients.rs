//! Slow and idle clients. Every request head has a deadline, on a kept-alive connection too;
//! an idle connection closes after the keep-alive time; a client that stops reading is
//! dropped; connection slots held by slow clients free up at their deadline, so a probe still
//! gets through.
//!
//! The tests speak HTTP/1.1 over raw TCP, a byte at a time where it matters. Upper bounds
//! allow `SLACK` beyond the deadline so that a loaded machine does not make them flake.

use std::time::{Duration, Instant};

use admin_api_keys::config::Settings;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(2);
const MAX_CONNECTIONS: usize = 8;
/// How much later than its deadline a connection may close and still pass.
const SLACK: Duration = Duration::from_secs(3);
/// A slow client sends a byte this often: a head then takes ten times the deadline.
const TRICKLE: Duration = Duration::from_millis(250);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn short_timeouts(settings: &mut Settings) {
    settings.request_head_timeout = HEAD_TIMEOUT;
    settings.keep_alive = KEEP_ALIVE;
    settings.max_connections_per_worker = Some(MAX_CONNECTIONS);
}

backend_tests!(settings = short_timeouts;
    a_first_request_head_sent_too_slowly_gets_408_and_a_closed_connection,
    a_later_request_head_sent_too_slowly_gets_408_and_a_closed_connection,
    an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time,
    a_kept_alive_connection_serves_many_requests_for_longer_than_the_head_deadline,
    healthz_answers_while_slow_clients_hold_every_connection_slot,
    a_client_that_stops_reading_its_responses_is_disconnected,
);

async fn a_first_request_head_sent_too_slowly_gets_408_and_a_closed_connection(app: TestApp) {
    // Arrange
    let started = Instant::now();
    let conn = Conn::open(&app).await;

    // Act
    let received = conn.trickle_until_closed(HEALTHZ).await;

    // Assert
    let elapsed = started.elapsed();
    assert_is_timeout_response(&received);
    assert!(elapsed >= HEAD_TIMEOUT, "closed early, after {elapsed:?}");
    assert!(elapsed <= HEAD_TIMEOUT + SLACK, "closed after {elapsed:?}");
}

async fn a_later_request_head_sent_too_slowly_gets_408_and_a_closed_connection(app: TestApp) {
    // Arrange: one complete request, so the connection is kept alive.
    let mut conn = Conn::open(&app).await;
    conn.send(HEALTHZ).await;
    assert_eq!(conn.response().await.status, 200);

    // Act
    let started = Instant::now();
    let received = conn.trickle_until_closed(HEALTHZ).await;

    // Assert
    let elapsed = started.elapsed();
    assert_is_timeout_response(&received);
    assert!(elapsed >= HEAD_TIMEOUT, "closed early, after {elapsed:?}");
    assert!(elapsed <= HEAD_TIMEOUT + SLACK, "closed after {elapsed:?}");
}

async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(app: TestApp) {
    // Arrange
    let mut conn = Conn::open(&app).await;
    conn.send(HEALTHZ).await;
    let response = conn.response().await;
    assert_eq!(response.status, 200);
    assert!(
        !response.head.contains("connection: close"),
        "not kept alive: {}",
        response.head
    );

    // Act
    let started = Instant::now();
    let received = conn.read_until_closed(KEEP_ALIVE + SLACK).await;

    // Assert: closed without a word, not before (about) the keep-alive time. actix-http
    // counts keep-alive from a clock it updates every 500 ms, hence the lower bound's margin.
    let elapsed = started.elapsed();
    assert!(
        received.is_empty(),
        "an idle connection got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(elapsed >= KEEP_ALIVE / 2, "closed early, after {elapsed:?}");
}

async fn a_kept_alive_connection_serves_many_requests_for_longer_than_the_head_deadline(
    app: TestApp,
) {
    // Arrange
    let mut conn = Conn::open(&app).await;
    let list = format!(
        "GET /v1/organization/admin_api_keys HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.admin_key
    );
    let started = Instant::now();

    // Act: requests with pauses shorter than keep-alive, over more than the head deadline,
    // then two requests in one write (pipelined), then one more.
    let mut responses = Vec::new();
    for request in [HEALTHZ, list.as_bytes(), HEALTHZ, list.as_bytes()] {
        conn.send(request).await;
        responses.push(conn.response().await);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    conn.send(&[list.as_bytes(), HEALTHZ].concat()).await;
    responses.push(conn.response().await);
    responses.push(conn.response().await);
    conn.send(HEALTHZ).await;
    responses.push(conn.response().await);

    // Assert
    assert!(started.elapsed() > HEAD_TIMEOUT);
    let expected = ["ok", "list", "ok", "list", "list", "ok", "ok"];
    assert_eq!(responses.len(), expected.len());
    for (i, (response, expected)) in responses.iter().zip(expected).enumerate() {
        assert_eq!(response.status, 200, "request {i}: {}", response.head);
        let body: Value = serde_json::from_slice(&response.body).expect("a JSON body");
        let kind = if body["object"] == "list" {
            "list"
        } else {
            body["status"].as_str().unwrap_or("?")
        };
        assert_eq!(kind, expected, "request {i}: {body}");
    }
}

async fn healthz_answers_while_slow_clients_hold_every_connection_slot(app: TestApp) {
    // Arrange: as many slow clients as the worker takes connections, each trickling its
    // second request once its first has been answered.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(MAX_CONNECTIONS);
    let mut slow = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut conn = Conn::open(&app).await;
        let ready = ready_tx.clone();
        slow.push(actix_web::rt::spawn(async move {
            conn.send(HEALTHZ).await;
            assert_eq!(conn.response().await.status, 200);
            ready.send(()).await.unwrap();
            conn.trickle_until_closed(HEALTHZ).await
        }));
    }
    for _ in 0..MAX_CONNECTIONS {
        ready_rx.recv().await.unwrap();
    }
    let started = Instant::now();

    // Act: a new connection waits for a free slot.
    let response = tokio::time::timeout(
        HEAD_TIMEOUT + SLACK,
        app.client.get(app.url("/healthz")).send(),
    )
    .await
    .expect("healthz answers within the slow clients' deadline")
    .expect("healthz answers");

    // Assert
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() <= HEAD_TIMEOUT + SLACK);
    for task in slow {
        assert_is_timeout_response(&task.await.unwrap());
    }
}

async fn a_client_that_stops_reading_its_responses_is_disconnected(app: TestApp) {
    // Arrange: a small receive buffer, so the server's writes block soon.
    let addr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.expect("connects");

    // Act: pipeline requests until the server stops taking them, then read nothing for
    // longer than the stall allowance.
    let batch = HEALTHZ.repeat(100);
    let mut sent = 0;
    while let Ok(written) =
        tokio::time::timeout(Duration::from_secs(1), stream.write_all(&batch)).await
    {
        written.expect("the server takes requests until it stops reading");
        sent += 100;
    }
    tokio::time::sleep(KEEP_ALIVE + HEAD_TIMEOUT + SLACK).await;
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    tokio::time::timeout(SLACK, async {
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the connection is closed");

    // Assert: dropped with requests unanswered (it would otherwise answer them all).
    let answered = find_all(&received, b"HTTP/1.1 200 OK");
    assert!(answered < sent, "all {sent} requests answered");
}

/// A client connection; `buffer` holds what was read past the last response.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

struct Response {
    status: u16,
    /// Lowercased.
    head: String,
    body: Vec<u8>,
}

impl Conn {
    async fn open(app: &TestApp) -> Conn {
        let addr = app.address.trim_start_matches("http://");
        Conn {
            stream: TcpStream::connect(addr).await.expect("connects"),
            buffer: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("request sent");
    }

    /// Reads one response, which must have a `content-length`.
    async fn response(&mut self) -> Response {
        let deadline = HEAD_TIMEOUT + SLACK;
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.read_more(deadline).await;
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec())
            .unwrap()
            .to_ascii_lowercase();
        let status = head[9..12].parse().expect("a status code");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a content-length")
            .trim()
            .parse()
            .unwrap();
        while self.buffer.len() < head_end + length {
            self.read_more(deadline).await;
        }
        let body = self.buffer[head_end..head_end + length].to_vec();
        self.buffer.drain(..head_end + length);
        Response { status, head, body }
    }

    async fn read_more(&mut self, within: Duration) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(within, self.stream.read(&mut chunk))
            .await
            .expect("the response arrives in time")
            .expect("the connection stays up");
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&self.buffer)
        );
        self.buffer.extend_from_slice(&chunk[..n]);
    }

    /// Everything the server sends until it closes the connection (a reset counts as closed).
    async fn read_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let mut received = std::mem::take(&mut self.buffer);
        let mut chunk = [0u8; 4096];
        tokio::time::timeout(within, async {
            while let Ok(n @ 1..) = self.stream.read(&mut chunk).await {
                received.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still open after {within:?}, having sent {:?}",
                String::from_utf8_lossy(&received)
            )
        });
        received
    }

    /// Sends `request` a byte every `TRICKLE` while reading; returns what the server sent
    /// before it closed the connection, which must happen within the deadline and `SLACK`.
    async fn trickle_until_closed(self, request: &[u8]) -> Vec<u8> {
        let Conn {
            mut stream,
            mut buffer,
        } = self;
        let (mut reader, mut writer) = stream.split();
        let trickle = async {
            for byte in request {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(TRICKLE).await;
            }
            std::future::pending::<()>().await;
        };
        let read = async {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut chunk).await {
                buffer.extend_from_slice(&chunk[..n]);
            }
        };
        let closed = tokio::time::timeout(HEAD_TIMEOUT + SLACK, async {
            tokio::select! {
                () = trickle => {}
                () = read => {}
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "still open {:?} after a slow head began, having sent {:?}",
            HEAD_TIMEOUT + SLACK,
            String::from_utf8_lossy(&buffer)
        );
        buffer
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Asserts `received` is exactly one 408 in the error envelope, announcing the close.
fn assert_is_timeout_response(received: &[u8]) {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 408 "), "{text:?}");
    assert!(head.contains("\r\nconnection: close"), "{text:?}");
    assert!(
        head.contains("\r\ncontent-type: application/json"),
        "{text:?}"
    );
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    let error = &body["error"];
    assert_eq!(error["type"], "invalid_request_error", "{body}");
    assert_eq!(error["code"], "request_timeout", "{body}");
    assert!(error["param"].is_null(), "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

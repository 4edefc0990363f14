//! Requests written by hand on a TCP stream, for what an HTTP client library will not do:
//! send the head of a request now and its body later.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// A request whose head is sent and whose body is not (yet).
pub struct HeldRequest {
    stream: TcpStream,
}

impl HeldRequest {
    /// Sends `method path` with `key` as bearer and `Content-Length: body_length`, then waits
    /// until the server has seen the head (its auth has run), without sending the body.
    pub async fn start(
        app: &TestApp,
        key: &str,
        method: &str,
        path: &str,
        body_length: usize,
    ) -> Self {
        let address = app.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {body_length}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send head");
        // Authentication happens when the head arrives; give the server a moment to do it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self { stream }
    }

    /// The response, if the server answers within `wait` without the body.
    pub async fn response_within(&mut self, wait: Duration) -> Option<(u16, Value)> {
        tokio::time::timeout(wait, read_response(&mut self.stream))
            .await
            .ok()
    }

    /// Sends part of the body.
    pub async fn send_part(&mut self, part: &[u8]) {
        self.stream
            .write_all(part)
            .await
            .expect("send part of the body");
    }

    /// Sends the body and reads the response.
    pub async fn finish(mut self, body: &[u8]) -> (u16, Value) {
        self.stream.write_all(body).await.expect("send body");
        tokio::time::timeout(Duration::from_secs(15), read_response(&mut self.stream))
            .await
            .expect("the server answers")
    }
}

/// Reads a whole response from a connection the server closes after it.
async fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

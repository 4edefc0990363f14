//! A body that does not arrive within `REQUEST_BODY_TIMEOUT_SECS` is answered with 408 and a
//! closed connection, so a client cannot hold a request (and its authorization) open; the
//! head deadline never applies to a body, even after `100 Continue`.

use std::time::{Duration, Instant};

use admin_api_keys::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;
use crate::raw::HeldRequest;

fn short_body_deadline(settings: &mut Settings) {
    settings.request_head_timeout = Duration::from_secs(1);
    settings.request_body_timeout = Duration::from_secs(4);
}

backend_tests!(settings = short_body_deadline;
    a_body_that_trickles_past_the_deadline_gets_408_and_a_closed_connection,
    after_100_continue_the_body_has_the_body_deadline_not_the_head_deadline,
);

async fn after_100_continue_the_body_has_the_body_deadline_not_the_head_deadline(app: TestApp) {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let body = br#"{"name": "sent slowly"}"#;
    let head = format!(
        "POST /v1/organization/admin_api_keys HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        app.admin_key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // 2.4 s in all: past the 1 s head deadline, within the 4 s body deadline.
    for part in body.chunks(4) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        stream.write_all(part).await.unwrap();
    }
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

async fn a_body_that_trickles_past_the_deadline_gets_408_and_a_closed_connection(app: TestApp) {
    let body = br#"{"name": "never finished"}"#;
    let mut held = HeldRequest::start(
        &app,
        &app.admin_key,
        "POST",
        "/v1/organization/admin_api_keys",
        body.len(),
    )
    .await;
    let started = Instant::now();
    held.send_part(&body[..5]).await;
    let (status, response) = held
        .response_within(Duration::from_secs(10))
        .await
        .expect("the server answers without the rest of the body");
    assert_eq!(status, 408, "{response}");
    assert_eq!(response["error"]["code"], "request_timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the deadline"
    );
    assert_eq!(app.list("").await["data"].as_array().unwrap().len(), 1);
}

//! A body that does not arrive within `REQUEST_BODY_TIMEOUT_SECS` is answered with 408 and a
//! closed connection, so a client cannot hold a request (and its authorization) open.

use std::time::{Duration, Instant};

use admin_api_keys::config::Settings;

use crate::helpers::TestApp;
use crate::raw::HeldRequest;

fn short_body_deadline(settings: &mut Settings) {
    settings.request_body_timeout = Duration::from_secs(2);
}

backend_tests!(settings = short_body_deadline;
    a_body_that_trickles_past_the_deadline_gets_408_and_a_closed_connection,
);

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

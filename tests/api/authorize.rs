//! A write is authorized when it acts, not only when its headers arrive: every write re-reads
//! its caller inside its transaction, and the scope is checked before the body is read.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, read};
use crate::raw::HeldRequest;

backend_tests!(
    the_scope_is_checked_before_the_body_is_read,
    a_create_held_back_while_its_key_was_deleted_is_refused,
    a_disabled_key_cannot_re_enable_itself_with_a_held_back_body,
    a_create_held_back_while_its_scope_was_removed_is_refused,
    a_rotation_held_back_while_its_key_was_disabled_is_refused,
    concurrent_writes_by_and_on_the_same_keys_never_fail_with_a_server_error,
);

const PATH: &str = "/v1/organization/admin_api_keys";

/// A second key with every scope of the bootstrap key: (id, secret).
async fn second_writer(app: &TestApp) -> (String, String) {
    let key = app.create_named("held back").await;
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

/// Disables the key `id` with the bootstrap key (asserting 200).
async fn disable(app: &TestApp, id: &str) {
    let disabled = app
        .post_json(&format!("{PATH}/{id}"), &json!({ "enabled": false }))
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
}

async fn key_count(app: &TestApp) -> usize {
    app.list("limit=100").await["data"]
        .as_array()
        .unwrap()
        .len()
}

async fn the_scope_is_checked_before_the_body_is_read(app: TestApp) {
    let reader = app
        .create_key(json!({ "name": "reader", "scopes": ["admin_api_keys.read"] }))
        .await;
    let mut held =
        HeldRequest::start(&app, reader["value"].as_str().unwrap(), "POST", PATH, 64).await;
    let (status, body) = held
        .response_within(Duration::from_secs(5))
        .await
        .expect("a key without the scope is refused without waiting for the body");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "missing_scope.admin_api_keys.write");
}

async fn a_create_held_back_while_its_key_was_deleted_is_refused(app: TestApp) {
    let (id, secret) = second_writer(&app).await;
    let body = br#"{"name": "made by a deleted key"}"#;
    let held = HeldRequest::start(&app, &secret, "POST", PATH, body.len()).await;
    let deleted = app.delete(&format!("{PATH}/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let before = key_count(&app).await;

    let (status, response) = held.finish(body).await;
    assert_eq!(status, 401, "{response}");
    assert_eq!(response["error"]["code"], "invalid_api_key");
    assert_eq!(key_count(&app).await, before, "no key was made");
}

async fn a_disabled_key_cannot_re_enable_itself_with_a_held_back_body(app: TestApp) {
    let (id, secret) = second_writer(&app).await;
    let body = br#"{"enabled": true}"#;
    let held = HeldRequest::start(&app, &secret, "POST", &format!("{PATH}/{id}"), body.len()).await;
    disable(&app, &id).await;

    let (status, response) = held.finish(body).await;
    assert_eq!(status, 401, "{response}");
    assert_eq!(response["error"]["code"], "api_key_disabled");
    let (_, key) = read(app.get(&format!("{PATH}/{id}")).await).await;
    assert_eq!(key["enabled"], false, "the key stays disabled");
}

async fn a_create_held_back_while_its_scope_was_removed_is_refused(app: TestApp) {
    let (id, secret) = second_writer(&app).await;
    let body = br#"{"name": "made without the scope"}"#;
    let held = HeldRequest::start(&app, &secret, "POST", PATH, body.len()).await;
    let narrowed = app
        .post_json(
            &format!("{PATH}/{id}"),
            &json!({ "scopes": ["admin_api_keys.read"] }),
        )
        .await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    let before = key_count(&app).await;

    let (status, response) = held.finish(body).await;
    assert_eq!(status, 403, "{response}");
    assert_eq!(
        response["error"]["code"],
        "missing_scope.admin_api_keys.write"
    );
    assert_eq!(key_count(&app).await, before, "no key was made");
}

async fn a_rotation_held_back_while_its_key_was_disabled_is_refused(app: TestApp) {
    let (id, secret) = second_writer(&app).await;
    let target = app.create_named("to rotate").await;
    let target_id = target["id"].as_str().unwrap();
    let body = b"{}";
    let held = HeldRequest::start(
        &app,
        &secret,
        "POST",
        &format!("{PATH}/{target_id}/rotate"),
        body.len(),
    )
    .await;
    disable(&app, &id).await;

    let (status, response) = held.finish(body).await;
    assert_eq!(status, 401, "{response}");
    let (_, old) = read(app.get(&format!("{PATH}/{target_id}")).await).await;
    assert_eq!(old["expires_at"], json!(null), "the target was not rotated");
}

/// Creates by one key, changes of that key by another and `last_used_at` flushes, all at once:
/// the row locks each write takes are ordered, so none of them deadlocks (which would be a 500).
async fn concurrent_writes_by_and_on_the_same_keys_never_fail_with_a_server_error(app: TestApp) {
    let (a_id, a_secret) = second_writer(&app).await;
    let (b_id, b_secret) = second_writer(&app).await;
    for round in 0..8 {
        let create = app
            .request_as(&a_secret, reqwest::Method::POST, PATH)
            .json(&json!({ "name": format!("by a {round}") }))
            .send();
        let rename_a = app
            .request_as(&b_secret, reqwest::Method::POST, &format!("{PATH}/{a_id}"))
            .json(&json!({ "name": format!("a {round}") }))
            .send();
        let rename_b = app
            .request_as(&a_secret, reqwest::Method::POST, &format!("{PATH}/{b_id}"))
            .json(&json!({ "name": format!("b {round}") }))
            .send();
        let (created, renamed_a, renamed_b, ()) =
            futures_util::join!(create, rename_a, rename_b, app.flush_usage());
        for response in [created, renamed_a, renamed_b] {
            let response = response.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "round {round}");
        }
    }
}

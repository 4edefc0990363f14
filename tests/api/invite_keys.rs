//! An invite carries the authority of the key that made it: deleting or disabling that key
//! withdraws its pending invites (audited), rotation hands them to the successor, and an
//! invite whose key has expired cannot be accepted.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, assert_error, read};

backend_tests!(
    deleting_the_key_that_made_an_invite_withdraws_it_and_audits_the_withdrawal,
    disabling_the_key_that_made_an_invite_withdraws_it_for_good,
    rotation_hands_the_old_keys_invites_to_the_successor,
    an_invite_cannot_be_accepted_once_the_key_that_made_it_expired,
);

const INVITES: &str = "/v1/organization/invites";
const ACCEPT: &str = "/v1/organization/invites/accept";
const KEYS: &str = "/v1/organization/admin_api_keys";
const LOGS: &str = "/v1/organization/audit_logs";

/// A new key of the bootstrapped owner (every scope, and every permission unless `body`
/// says otherwise: inviting an owner needs them): `(id, value)`.
async fn owner_key(app: &TestApp, mut body: Value) -> (String, String) {
    if body.get("permissions").is_none() {
        body["permissions"] = json!(["*"]);
    }
    let made = app.create_key(body).await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

/// An owner invite for `email` made with `key`: `(invite id, accept token)`.
async fn invite_with(app: &TestApp, key: &str, email: &str) -> (String, String) {
    let response = app
        .request_as(key, Method::POST, INVITES)
        .json(&json!({ "email": email, "role": "owner" }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "invite failed: {body}");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["accept_token"].as_str().unwrap().to_owned(),
    )
}

async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(ACCEPT))
        .json(&json!({ "token": token, "name": "Newcomer" }))
        .send()
        .await
        .unwrap()
}

/// Asserts that `token` is refused with the one refusal of an unusable token.
async fn assert_refused(app: &TestApp, token: &str, context: &str) {
    let error = assert_error(accept(app, token).await, StatusCode::BAD_REQUEST, context).await;
    assert_eq!(error["code"], "invalid_invite_token", "{context}");
}

async fn invite_status(app: &TestApp, id: &str) -> StatusCode {
    app.get(&format!("{INVITES}/{id}")).await.status()
}

async fn deleting_the_key_that_made_an_invite_withdraws_it_and_audits_the_withdrawal(app: TestApp) {
    // Arrange: a leaked key's owner invite, and one made by another key.
    let (leaked_id, leaked) = owner_key(&app, json!({ "name": "leaked" })).await;
    let (withdrawn, token) = invite_with(&app, &leaked, "attacker@example.com").await;
    let (kept, kept_token) = invite_with(&app, &app.admin_key, "colleague@example.com").await;
    app.clock.advance(1);

    // Act
    let deleted = app.delete(&format!("{KEYS}/{leaked_id}")).await;

    // Assert
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_refused(&app, &token, "the deleted key's invite").await;
    assert_eq!(invite_status(&app, &withdrawn).await, StatusCode::NOT_FOUND);
    assert_eq!(invite_status(&app, &kept).await, StatusCode::OK);
    let (_, logs) = read(
        app.get(&format!("{LOGS}?effective_at[gt]={START}&limit=100"))
            .await,
    )
    .await;
    let entries = logs["data"].as_array().unwrap();
    let withdrawal: Vec<&Value> = entries
        .iter()
        .filter(|e| e["type"] == "invite.deleted")
        .collect();
    assert_eq!(withdrawal.len(), 1, "{logs}");
    assert_eq!(withdrawal[0]["invite.deleted"]["id"], withdrawn.as_str());
    assert_eq!(withdrawal[0]["actor"]["api_key"]["id"], app.admin_key_id);
    assert!(
        entries
            .iter()
            .any(|e| e["type"] == "api_key.deleted" && e["api_key.deleted"]["id"] == leaked_id),
        "{logs}"
    );
    let (status, body) = read(accept(&app, &kept_token).await).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another key's invite still accepts: {body}"
    );
}

async fn disabling_the_key_that_made_an_invite_withdraws_it_for_good(app: TestApp) {
    let (key_id, key) = owner_key(&app, json!({ "name": "suspect" })).await;
    let (invite_id, token) = invite_with(&app, &key, "someone@example.com").await;
    let set_enabled = |enabled: bool| {
        app.request(Method::POST, &format!("{KEYS}/{key_id}"))
            .json(&json!({ "enabled": enabled }))
            .send()
    };

    let disabled = set_enabled(false).await.unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_refused(&app, &token, "the disabled key's invite").await;
    assert_eq!(invite_status(&app, &invite_id).await, StatusCode::NOT_FOUND);

    let enabled = set_enabled(true).await.unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    assert_refused(&app, &token, "after the key is enabled again").await;
    let (_, page) = read(
        app.get(&format!("{LOGS}?event_types[]=invite.deleted"))
            .await,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
}

async fn rotation_hands_the_old_keys_invites_to_the_successor(app: TestApp) {
    // Arrange: two invites by a key that is then rotated with a minute of overlap.
    let (old_id, old) = owner_key(&app, json!({ "name": "deploy" })).await;
    let (_, first) = invite_with(&app, &old, "first@example.com").await;
    let (second_id, second) = invite_with(&app, &old, "second@example.com").await;
    let rotated = app
        .request(Method::POST, &format!("{KEYS}/{old_id}/rotate"))
        .json(&json!({ "previous_key_expires_in_seconds": 60 }))
        .send()
        .await
        .unwrap();
    let (status, successor) = read(rotated).await;
    assert_eq!(status, StatusCode::OK, "{successor}");

    // Act and assert: the old key's end does not end its invites...
    app.clock.advance(61);
    let (status, body) = read(accept(&app, &first).await).await;
    assert_eq!(status, StatusCode::OK, "after the overlap: {body}");
    // ...and deleting the successor withdraws them.
    let successor_id = successor["id"].as_str().unwrap();
    let deleted = app.delete(&format!("{KEYS}/{successor_id}")).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_refused(&app, &second, "the deleted successor's invite").await;
    assert_eq!(invite_status(&app, &second_id).await, StatusCode::NOT_FOUND);
}

async fn an_invite_cannot_be_accepted_once_the_key_that_made_it_expired(app: TestApp) {
    let (_, key) = owner_key(&app, json!({ "name": "short", "expires_in_seconds": 100 })).await;
    let (_, before) = invite_with(&app, &key, "early@example.com").await;
    let (_, after) = invite_with(&app, &key, "late@example.com").await;

    app.clock.advance(99);
    let (status, body) = read(accept(&app, &before).await).await;
    assert_eq!(status, StatusCode::OK, "while the key lives: {body}");
    app.clock.advance(1);
    assert_refused(&app, &after, "once the key has expired").await;
}

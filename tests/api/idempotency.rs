//! `Idempotency-Key` on create and rotate: a retried request makes one key, not two.

use admin_api_keys::config::Settings;
use admin_api_keys::domain::idempotency::ResponseSealer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, read};

const KEYS: &str = "/v1/organization/admin_api_keys";
const LOGS: &str = "/v1/organization/audit_logs";
const SECRET: &str = "5b1f0c9a7e3d2b4c6a8e0f1d3b5c7a9e1f3d5b7c9a0e2f4d6b8c0a1e3f5d7b9c";
const DAY: i64 = 24 * 3600;

/// Settings with an `IDEMPOTENCY_KEY_SECRET`: answers are kept, sealed, for replays.
fn with_a_secret(settings: &mut Settings) {
    settings.idempotency_sealer = Some(ResponseSealer::from_hex(SECRET).unwrap());
}

mod with_a_secret {
    use super::*;

    backend_tests!(settings = with_a_secret;
        a_retried_create_gets_the_first_answer_again_and_makes_one_key,
        the_kept_answer_does_not_show_the_secret_to_the_database,
        a_retried_rotation_gets_the_first_answer_again_and_rotates_once,
        concurrent_retries_make_one_key,
        an_idempotency_key_is_forgotten_after_24_hours,
        idempotency_keys_belong_to_the_key_that_sent_them,
    );
}

backend_tests!(
    without_a_secret_a_retry_gets_a_409_naming_the_key_already_made,
    the_same_idempotency_key_with_another_body_is_a_409_naming_the_header,
    without_the_header_every_retry_makes_a_new_key,
    a_malformed_idempotency_key_is_a_400_naming_the_header,
    a_request_that_failed_is_not_remembered,
);

/// `POST path` as `key` with `Idempotency-Key: idempotency_key` and the JSON `body`.
async fn send(
    app: &TestApp,
    key: &str,
    path: &str,
    idempotency_key: &str,
    body: &Value,
) -> reqwest::Response {
    app.request_as(key, Method::POST, path)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// Sends the create twice; returns both answers, asserting each is a 200.
async fn create_twice(
    app: &TestApp,
    idempotency_key: &str,
    body: &Value,
) -> (reqwest::Response, reqwest::Response) {
    let first = send(app, &app.admin_key, KEYS, idempotency_key, body).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = send(app, &app.admin_key, KEYS, idempotency_key, body).await;
    (first, again)
}

async fn key_ids(app: &TestApp) -> Vec<String> {
    ids(&app.list("limit=100").await)
}

async fn keys_created_in_the_audit_log(app: &TestApp) -> usize {
    let (status, page) = read(
        app.get(&format!("{LOGS}?event_types[]=api_key.created&limit=100"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().len()
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// The stored `response` of every idempotency record.
async fn stored_responses(app: &TestApp) -> Vec<Option<String>> {
    use admin_api_keys::schema::idempotency_records::dsl::*;
    use diesel::prelude::*;
    app.with_db(|conn| {
        idempotency_records
            .select(response)
            .load::<Option<String>>(conn)
            .unwrap()
    })
    .await
}

async fn a_retried_create_gets_the_first_answer_again_and_makes_one_key(app: TestApp) {
    let before = key_ids(&app).await.len();
    let body = json!({ "name": "deploy", "scopes": ["admin_api_keys.read"] });

    let (first, again) = create_twice(&app, "create-1", &body).await;
    // The same body with its members in another order and other whitespace.
    let reordered = app
        .request(Method::POST, KEYS)
        .header("Idempotency-Key", "create-1")
        .header("Content-Type", "application/json")
        .body("{ \"scopes\" : [\"admin_api_keys.read\"],\n \"name\": \"deploy\" }")
        .send()
        .await
        .unwrap();

    assert!(!replayed(&first), "the first answer is not a replay");
    assert!(
        replayed(&again) && replayed(&reordered),
        "the retries say they are replays"
    );
    let (first, again, reordered) = (
        read(first).await.1,
        read(again).await,
        read(reordered).await,
    );
    assert_eq!(again.0, StatusCode::OK, "{}", again.1);
    assert_eq!(
        again.1, first,
        "the retry gets the first answer, secret value included"
    );
    assert_eq!(
        reordered.1, first,
        "member order and whitespace do not matter"
    );
    assert!(
        first["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("sk-admin-"))
    );
    assert_eq!(key_ids(&app).await.len(), before + 1, "one key was made");
    assert_eq!(
        keys_created_in_the_audit_log(&app).await,
        before + 1,
        "one `api_key.created`"
    );
}

async fn the_kept_answer_does_not_show_the_secret_to_the_database(app: TestApp) {
    let (first, _) = create_twice(&app, "sealed", &json!({ "name": "deploy" })).await;
    let value = read(first).await.1["value"].as_str().unwrap().to_owned();

    let stored = stored_responses(&app).await;

    assert_eq!(stored.len(), 1, "one record");
    let sealed = stored[0].as_deref().expect("the answer is kept");
    let hex_of_value: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !sealed.contains(&value) && !sealed.contains(&hex_of_value),
        "sealed, not in clear"
    );
}

async fn a_retried_rotation_gets_the_first_answer_again_and_rotates_once(app: TestApp) {
    let old = app.create_named("to rotate").await;
    let other = app.create_named("another").await;
    let rotate = |id: &Value| format!("{KEYS}/{}/rotate", id.as_str().unwrap());
    let body = json!({ "previous_key_expires_in_seconds": 60 });
    let before = key_ids(&app).await.len();

    let first = send(&app, &app.admin_key, &rotate(&old["id"]), "rotate-1", &body).await;
    let again = send(&app, &app.admin_key, &rotate(&old["id"]), "rotate-1", &body).await;
    let elsewhere = send(
        &app,
        &app.admin_key,
        &rotate(&other["id"]),
        "rotate-1",
        &body,
    )
    .await;

    assert!(replayed(&again));
    let (first, again) = (read(first).await, read(again).await);
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(
        again, first,
        "the retry gets the first answer, secret value included"
    );
    assert_eq!(first.1["rotated_from"], old["id"]);
    let error = assert_error(
        elsewhere,
        StatusCode::CONFLICT,
        "the same key on another path",
    )
    .await;
    assert_eq!(error["code"], "idempotency_key_reused");
    assert_eq!(
        key_ids(&app).await.len(),
        before + 1,
        "one successor was made"
    );
}

async fn concurrent_retries_make_one_key(app: TestApp) {
    let before = key_ids(&app).await.len();
    let body = json!({ "name": "deploy" });

    let answers = futures_util::future::join_all(
        (0..8).map(|_| send(&app, &app.admin_key, KEYS, "all-at-once", &body)),
    )
    .await;

    let mut made = Vec::new();
    for answer in answers {
        let (status, body) = read(answer).await;
        match status {
            StatusCode::OK => made.push(body["id"].clone()),
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "idempotency_key_in_use", "{body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    made.dedup();
    assert_eq!(made.len(), 1, "every 200 names the same key: {made:?}");
    assert_eq!(key_ids(&app).await.len(), before + 1, "one key was made");
}

async fn an_idempotency_key_is_forgotten_after_24_hours(app: TestApp) {
    let body = json!({ "name": "deploy" });
    let first = read(send(&app, &app.admin_key, KEYS, "daily", &body).await)
        .await
        .1;

    app.clock.advance(DAY - 1);
    let within = send(&app, &app.admin_key, KEYS, "daily", &body).await;
    app.clock.advance(1);
    let after = send(&app, &app.admin_key, KEYS, "daily", &body).await;

    assert!(replayed(&within), "23:59:59 later it is a replay");
    assert_eq!(read(within).await.1["id"], first["id"]);
    assert!(!replayed(&after), "24 hours later it is a new request");
    let after = read(after).await;
    assert_eq!(after.0, StatusCode::OK, "{}", after.1);
    assert_ne!(after.1["id"], first["id"], "a new key");
    assert_eq!(
        stored_responses(&app).await.len(),
        1,
        "the expired record was deleted"
    );
}

async fn idempotency_keys_belong_to_the_key_that_sent_them(app: TestApp) {
    let other = app.create_named("another caller").await;
    let other = other["value"].as_str().unwrap();
    let body = json!({ "name": "deploy" });

    let (mine, mine_again) = create_twice(&app, "shared", &body).await;
    let theirs = send(&app, other, KEYS, "shared", &body).await;

    assert!(replayed(&mine_again), "the same caller gets a replay");
    assert!(!replayed(&theirs), "another caller's request is its own");
    let (mine, theirs) = (read(mine).await.1, read(theirs).await);
    assert_eq!(theirs.0, StatusCode::OK, "{}", theirs.1);
    assert_ne!(theirs.1["id"], mine["id"], "its own key");
}

async fn without_a_secret_a_retry_gets_a_409_naming_the_key_already_made(app: TestApp) {
    let before = key_ids(&app).await.len();

    let (first, again) = create_twice(&app, "create-1", &json!({ "name": "deploy" })).await;

    let first = read(first).await.1;
    let error = assert_error(again, StatusCode::CONFLICT, "a retry without a kept answer").await;
    assert_eq!(error["code"], "idempotency_key_already_used");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(first["id"].as_str().unwrap()),
        "names the key made: {message}"
    );
    assert!(!message.contains(first["value"].as_str().unwrap()));
    assert_eq!(key_ids(&app).await.len(), before + 1, "one key was made");
    assert_eq!(keys_created_in_the_audit_log(&app).await, before + 1);
    assert_eq!(
        stored_responses(&app).await,
        vec![None],
        "no answer is stored"
    );
}

async fn the_same_idempotency_key_with_another_body_is_a_409_naming_the_header(app: TestApp) {
    let before = key_ids(&app).await.len();
    let first = send(
        &app,
        &app.admin_key,
        KEYS,
        "k-1",
        &json!({ "name": "deploy" }),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);

    let other = send(
        &app,
        &app.admin_key,
        KEYS,
        "k-1",
        &json!({ "name": "deploy 2" }),
    )
    .await;

    let error = assert_error(other, StatusCode::CONFLICT, "another body").await;
    assert_eq!(error["code"], "idempotency_key_reused");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`Idempotency-Key`"),
        "{error}"
    );
    assert_eq!(key_ids(&app).await.len(), before + 1, "no second key");
}

async fn without_the_header_every_retry_makes_a_new_key(app: TestApp) {
    let before = key_ids(&app).await.len();

    let first = app.create_named("deploy").await;
    let again = app.create_named("deploy").await;

    assert_ne!(
        first["id"], again["id"],
        "documented: each request without the header is new"
    );
    assert_eq!(key_ids(&app).await.len(), before + 2);
}

async fn a_malformed_idempotency_key_is_a_400_naming_the_header(app: TestApp) {
    let before = key_ids(&app).await.len();
    let target = app.create_named("to rotate").await;
    let rotate = format!("{KEYS}/{}/rotate", target["id"].as_str().unwrap());
    let too_long = "k".repeat(256);
    for (value, why) in [
        (&b""[..], "empty"),
        (too_long.as_bytes(), "256 characters"),
        (&b"has space"[..], "a space"),
        (&b"caf\xc3\xa9-secret"[..], "not ASCII"),
    ] {
        for path in [KEYS, rotate.as_str()] {
            let response = app
                .request(Method::POST, path)
                .header(
                    "Idempotency-Key",
                    reqwest::header::HeaderValue::from_bytes(value).unwrap(),
                )
                .json(&json!({ "name": "x" }))
                .send()
                .await
                .unwrap();
            let error = assert_error(response, StatusCode::BAD_REQUEST, why).await;
            assert_eq!(error["param"], "Idempotency-Key", "{why}");
            assert_eq!(error["code"], "invalid_idempotency_key", "{why}");
            if !value.is_empty() {
                let text = String::from_utf8_lossy(value);
                assert!(
                    !error["message"].as_str().unwrap().contains(&*text),
                    "{why}: not echoed"
                );
            }
        }
    }
    let twice = app
        .request(Method::POST, KEYS)
        .header("Idempotency-Key", "one")
        .header("Idempotency-Key", "two")
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    let error = assert_error(twice, StatusCode::BAD_REQUEST, "sent twice").await;
    assert_eq!(error["param"], "Idempotency-Key");
    assert_eq!(
        key_ids(&app).await.len(),
        before + 1,
        "only the key to rotate was made"
    );
}

async fn a_request_that_failed_is_not_remembered(app: TestApp) {
    let unknown_owner = json!({ "name": "deploy", "owner_id": "user_000000000000000000000000" });

    let failed = send(&app, &app.admin_key, KEYS, "try", &unknown_owner).await;
    let fixed = send(
        &app,
        &app.admin_key,
        KEYS,
        "try",
        &json!({ "name": "deploy" }),
    )
    .await;

    assert_error(failed, StatusCode::NOT_FOUND, "an unknown owner").await;
    let (status, body) = read(fixed).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the failure made nothing to conflict with: {body}"
    );
}

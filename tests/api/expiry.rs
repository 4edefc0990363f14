//! Absolute expiry (seed 000's `apiKeyExpiryDate`, seed 002's `expiresAt`): `expires_at` on
//! create for keys of every kind, an update that may only bring a key's end forward (and
//! reaches forward auth at once), and the organisation's lifetime policy.

use admin_api_keys::config::Settings;
use admin_api_keys::domain::LifetimePolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, START, TestApp, assert_error, read};
use crate::project_keys::{
    FORWARD, PROJECTS, member_key, member_of, passes, project, value, within_a_second,
};

backend_tests!(
    create_takes_expires_at_or_expires_in_seconds_but_not_both,
    expires_at_must_be_in_the_future_and_within_a_year,
    project_member_and_service_account_keys_take_an_expiry_too,
    an_update_brings_a_keys_end_forward_and_forward_auth_stops_it_there,
    an_update_never_extends_a_key,
    bringing_a_keys_end_forward_is_audited,
    bringing_the_last_admin_keys_end_within_five_minutes_is_refused,
);

mod with_a_policy {
    use super::*;

    backend_tests!(settings = policy;
        new_keys_of_every_kind_get_the_default_lifetime,
        nothing_beyond_the_maximum_lifetime_is_made,
    );
}

const KEYS: &str = "/v1/organization/admin_api_keys";
const YEAR: i64 = 31_536_000;
const MAX: i64 = 3600;
const DEFAULT: i64 = 600;

fn policy(settings: &mut Settings) {
    settings.key_lifetime = LifetimePolicy::new(Some(MAX), Some(DEFAULT)).unwrap();
}

fn key_path(key: &Value) -> String {
    format!("{KEYS}/{}", key["id"].as_str().unwrap())
}

/// A create answered with an error; returns it (asserting the status).
async fn refused(app: &TestApp, path: &str, body: Value, why: &str) -> Value {
    assert_error(
        app.post_json(path, &body).await,
        StatusCode::BAD_REQUEST,
        why,
    )
    .await
}

async fn create_takes_expires_at_or_expires_in_seconds_but_not_both(app: TestApp) {
    let at = START + 86_400;

    let key = app
        .create_key(json!({ "name": "dated", "expires_at": at }))
        .await;

    assert_eq!(key["expires_at"], at);
    let (_, retrieved) = read(app.get(&key_path(&key)).await).await;
    assert_eq!(retrieved["expires_at"], at);
    let key = app
        .create_key(json!({ "name": "in", "expires_in_seconds": 60 }))
        .await;
    assert_eq!(key["expires_at"], START + 60);
    let key = app
        .create_key(json!({ "name": "null", "expires_at": null }))
        .await;
    assert_eq!(
        key["expires_at"],
        Value::Null,
        "null means no expiry, as for expires_in_seconds"
    );

    let both = json!({ "name": "both", "expires_at": at, "expires_in_seconds": 60 });
    let error = refused(&app, KEYS, both, "both").await;
    assert_eq!(error["param"], "expires_at");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`expires_at`") && message.contains("`expires_in_seconds`"),
        "{message}"
    );
}

async fn expires_at_must_be_in_the_future_and_within_a_year(app: TestApp) {
    let cases = [
        (json!(START), "now"),
        (json!(START - 1), "in the past"),
        (json!(START + YEAR + 1), "beyond a year"),
        (json!(0), "the epoch"),
        (
            json!("2026-12-31T23:59:59Z"),
            "a date string: we take Unix seconds",
        ),
        (json!(1.5e9), "not whole"),
    ];
    for (at, why) in cases {
        let error = refused(&app, KEYS, json!({ "name": "k", "expires_at": at }), why).await;
        assert_eq!(error["param"], "expires_at", "{why}: {error}");
    }
    let key = app
        .create_key(json!({ "name": "a year", "expires_at": START + YEAR }))
        .await;
    assert_eq!(key["expires_at"], START + YEAR, "exactly a year is allowed");
}

async fn project_member_and_service_account_keys_take_an_expiry_too(app: TestApp) {
    let shop = project(&app).await;
    let member = member_of(&app, &shop).await;
    let keys = format!("{PROJECTS}/{shop}/api_keys");

    let body = json!({ "user_id": member, "expires_at": START + 30 });
    let (status, dated) = read(app.post_json(&keys, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{dated}");
    assert_eq!(dated["expires_at"], START + 30);
    let listed = read(app.get(&keys).await).await.1;
    assert_eq!(listed["data"][0]["expires_at"], START + 30, "{listed}");
    let plain = member_key(&app, &shop, &member, &[]).await;
    assert_eq!(plain["expires_at"], Value::Null);
    let both = json!({ "user_id": member, "expires_at": START + 30, "expires_in_seconds": 30 });
    assert_eq!(
        refused(&app, &keys, both, "both").await["param"],
        "expires_at"
    );
    let past = json!({ "user_id": member, "expires_at": START });
    assert_eq!(
        refused(&app, &keys, past, "now").await["param"],
        "expires_at"
    );

    let accounts = format!("{PROJECTS}/{shop}/service_accounts");
    let (_, account) = read(app.post_json(&accounts, &json!({ "name": "bot" })).await).await;
    let account_keys = format!("{accounts}/{}/api_keys", account["id"].as_str().unwrap());
    let (status, bot_key) = read(
        app.post_json(&account_keys, &json!({ "expires_in_seconds": 20 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bot_key}");
    assert_eq!(bot_key["expires_at"], START + 20, "{bot_key}");
    let too_long = json!({ "expires_at": START + YEAR + 1 });
    assert_eq!(
        refused(&app, &account_keys, too_long, "a year and a second").await["param"],
        "expires_at"
    );

    assert_eq!(passes(&app, value(&dated)).await, 200);
    app.clock.advance(20);
    let bot = bot_key["value"].as_str().unwrap();
    let (status, code, _) = crate::project_keys::forward(&app, bot, FORWARD).await;
    assert_eq!(
        (status, code),
        (401, json!("api_key_expired")),
        "the service account's key ends"
    );
    assert_eq!(
        passes(&app, value(&dated)).await,
        200,
        "the member's still works"
    );
    app.clock.advance(10);
    assert_eq!(
        passes(&app, value(&dated)).await,
        401,
        "and ends at its expires_at"
    );
}

async fn an_update_brings_a_keys_end_forward_and_forward_auth_stops_it_there(app: TestApp) {
    let key = app
        .create_key(
            json!({ "name": "worker", "expires_in_seconds": 3600, "scopes": ["keys.introspect"] }),
        )
        .await;
    let secret = key["value"].as_str().unwrap();
    assert_eq!(passes(&app, secret).await, 200, "cached now");

    let (status, changed) = read(
        app.post_json(&key_path(&key), &json!({ "expires_at": START + 10 }))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["expires_at"], START + 10);
    app.clock.advance(9);
    assert_eq!(
        passes(&app, secret).await,
        200,
        "a second before its new end"
    );
    app.clock.advance(1);
    let (status, code, _) = crate::project_keys::forward(&app, secret, FORWARD).await;
    assert_eq!(
        (status, code),
        (401, json!("api_key_expired")),
        "the cache learnt of it"
    );
    let response = app
        .request_as(secret, reqwest::Method::GET, KEYS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "and so did the admin API"
    );
}

async fn an_update_never_extends_a_key(app: TestApp) {
    let dated = app
        .create_key(json!({ "name": "dated", "expires_in_seconds": 100 }))
        .await;
    let open = app.create_named("never expires").await;
    let cases = [
        (&dated, json!(START + 101), "later than its current end"),
        (&dated, json!(START), "now"),
        (&dated, json!(START - 5), "in the past"),
        (&dated, json!(null), "null: no expiry at all"),
        (
            &open,
            json!(START + YEAR + 1),
            "a never-expiring key, beyond a year",
        ),
    ];
    for (key, at, why) in cases {
        let error = refused(&app, &key_path(key), json!({ "expires_at": at }), why).await;
        assert_eq!(error["param"], "expires_at", "{why}: {error}");
    }
    let (_, unchanged) = read(app.get(&key_path(&dated)).await).await;
    assert_eq!(
        unchanged["expires_at"],
        START + 100,
        "refusals change nothing"
    );

    let same = read(
        app.post_json(&key_path(&dated), &json!({ "expires_at": START + 100 }))
            .await,
    )
    .await;
    assert_eq!(same.0, StatusCode::OK, "its own end is allowed: {}", same.1);
    let (status, ended) = read(
        app.post_json(&key_path(&open), &json!({ "expires_at": START + YEAR }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(
        ended["expires_at"],
        START + YEAR,
        "a key that never expired may be given an end"
    );
}

async fn bringing_a_keys_end_forward_is_audited(app: TestApp) {
    let key = app
        .create_key(json!({ "name": "k", "expires_in_seconds": 100 }))
        .await;
    app.clock.advance(1);

    app.post_json(&key_path(&key), &json!({ "expires_at": START + 50 }))
        .await;

    let query = format!(
        "/v1/organization/audit_logs?event_types[]=api_key.updated&resource_ids[]={}",
        key["id"].as_str().unwrap()
    );
    let (_, page) = read(app.get(&query).await).await;
    assert_eq!(
        page["data"][0]["api_key.updated"]["changes_requested"],
        json!({ "expires_at": START + 50 }),
        "{page}"
    );
}

async fn bringing_the_last_admin_keys_end_within_five_minutes_is_refused(app: TestApp) {
    let bootstrap = json!({ "id": app.admin_key_id });

    let response = app
        .post_json(&key_path(&bootstrap), &json!({ "expires_at": START + 60 }))
        .await;

    let error = assert_error(response, StatusCode::CONFLICT, "the lock-out guard").await;
    assert_eq!(error["code"], "last_admin_key");
    let (status, body) = read(
        app.post_json(
            &key_path(&bootstrap),
            &json!({ "expires_at": START + 3600 }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an hour is enough: {body}");
}

async fn new_keys_of_every_kind_get_the_default_lifetime(app: TestApp) {
    let admin = app.create_named("no ask").await;
    assert_eq!(admin["expires_at"], START + DEFAULT);
    let asked = app
        .create_key(json!({ "name": "asked", "expires_in_seconds": MAX }))
        .await;
    assert_eq!(asked["expires_at"], START + MAX, "up to the maximum");

    let shop = project(&app).await;
    let member = member_of(&app, &shop).await;
    assert_eq!(
        member_key(&app, &shop, &member, &[]).await["expires_at"],
        START + DEFAULT
    );
    let accounts = format!("{PROJECTS}/{shop}/service_accounts");
    let (_, account) = read(app.post_json(&accounts, &json!({ "name": "bot" })).await).await;
    assert_eq!(
        account["api_key"]["expires_at"],
        START + DEFAULT,
        "{account}"
    );

    let invite = json!({ "email": "new@example.com", "role": "reader" });
    let (_, invited) = read(app.post_json("/v1/organization/invites", &invite).await).await;
    let accept = json!({ "token": invited["accept_token"], "name": "New" });
    let response = app
        .client
        .post(app.url("/v1/organization/invites/accept"))
        .json(&accept)
        .send()
        .await
        .unwrap();
    let (status, joined) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(
        joined["api_key"]["expires_at"],
        START + DEFAULT,
        "an invite's first key too"
    );

    // A rotation gives the successor the lifetime its predecessor was given.
    let rotate = format!("{}/rotate", key_path(&admin));
    let (status, rotated) = read(app.post_json(&rotate, &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["expires_at"], START + DEFAULT);
}

async fn nothing_beyond_the_maximum_lifetime_is_made(app: TestApp) {
    let cases = [
        (
            json!({ "name": "k", "expires_in_seconds": MAX + 1 }),
            "expires_in_seconds",
            "a second too long",
        ),
        (
            json!({ "name": "k", "expires_at": START + MAX + 1 }),
            "expires_at",
            "a second too late",
        ),
    ];
    for (body, param, why) in cases {
        let error = refused(&app, KEYS, body, why).await;
        assert_eq!(error["param"], param, "{why}");
        assert!(
            error["message"].as_str().unwrap().contains("3600"),
            "says the maximum: {error}"
        );
    }
    let key = app
        .create_key(json!({ "name": "k", "expires_in_seconds": 60 }))
        .await;
    let rotate = format!("{}/rotate", key_path(&key));
    let error = refused(
        &app,
        &rotate,
        json!({ "expires_in_seconds": null }),
        "a rotation asking for none",
    )
    .await;
    assert_eq!(error["param"], "expires_in_seconds");
    let error = refused(
        &app,
        &key_path(&key),
        json!({ "expires_at": START + MAX + 1 }),
        "update",
    )
    .await;
    assert_eq!(error["param"], "expires_at");
    let shop = project(&app).await;
    let member = member_of(&app, &shop).await;
    let keys = format!("{PROJECTS}/{shop}/api_keys");
    let too_long = json!({ "user_id": member, "expires_in_seconds": MAX + 1 });
    assert_eq!(
        refused(&app, &keys, too_long, "project key").await["param"],
        "expires_in_seconds"
    );
}

/// On PostgreSQL another replica that cached the key hears of its new end through the
/// `admin_api_keys` trigger (which watches `expires_at`) and refuses it from then on.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_key_brought_forward_on_one_replica_ends_then_on_another() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let key = a
        .create_key(
            json!({ "name": "worker", "expires_in_seconds": 3600, "scopes": ["keys.introspect"] }),
        )
        .await;
    let secret = key["value"].as_str().unwrap();
    within_a_second("a new key", async || passes(&b, secret).await == 200).await;
    assert_eq!(passes(&b, secret).await, 200, "cached on B now");

    let (status, body) = read(
        a.post_json(&key_path(&key), &json!({ "expires_at": START + 5 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    a.clock.advance(5);

    within_a_second("a key brought forward", async || {
        passes(&b, secret).await == 401
    })
    .await;
}

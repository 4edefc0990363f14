//! RFC 7662 introspection: the operator's services ask whether a key is good, whose it is and
//! what it may do; anything unusable is `{"active": false}` and nothing more.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    an_active_key_is_described_as_retrieve_shows_it,
    every_unusable_token_is_just_inactive,
    the_caller_needs_its_own_key_with_keys_introspect,
    invalid_bodies_are_400s,
    a_demoted_owners_key_shows_only_its_effective_scopes,
    introspection_counts_as_a_use_and_needs_no_query_once_cached,
);

const INTROSPECT: &str = "/v1/introspect";
const KEYS: &str = "/v1/organization/admin_api_keys";

/// Introspects `token` with the bootstrap key, as a form: status and body.
async fn introspect(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let response = app
        .request(Method::POST, INTROSPECT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("token", token), ("token_type_hint", "access_token")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn inactive(app: &TestApp, token: &str, why: &str) {
    let (status, body) = introspect(app, token).await;
    assert_eq!(status, StatusCode::OK, "{why}: {body}");
    assert_eq!(body, json!({ "active": false }), "{why}");
}

async fn an_active_key_is_described_as_retrieve_shows_it(app: TestApp) {
    let made = app
        .create_key(json!({
            "name": "worker",
            "scopes": ["admin_api_keys.read", "audit_logs.read"],
            "permissions": ["billing:*"],
            "expires_in_seconds": 3600,
        }))
        .await;
    let (id, value) = (
        made["id"].as_str().unwrap(),
        made["value"].as_str().unwrap(),
    );
    let (status, body) = introspect(&app, value).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, shown) = read(app.get(&format!("{KEYS}/{id}")).await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "admin_api_key");
    assert_eq!(body["client_id"], id);
    assert_eq!(body["sub"], app.owner_id.as_str());
    assert_eq!(body["scope"], "admin_api_keys.read audit_logs.read");
    assert_eq!(body["permissions"], json!(["billing:*"]));
    assert_eq!(body["iat"], made["created_at"]);
    assert_eq!(body["exp"], made["expires_at"]);
    assert_eq!(body["key"], shown, "the key object as retrieve shows it");
    assert!(
        !body.to_string().contains(&value[12..]),
        "the secret is not repeated"
    );

    // JSON works too; a key that never expires has no `exp`.
    let response = app
        .request(Method::POST, INTROSPECT)
        .json(&json!({ "token": app.admin_key }))
        .send()
        .await
        .unwrap();
    let (status, boot) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(boot["client_id"], app.admin_key_id.as_str());
    assert!(boot.get("exp").is_none(), "{boot}");
}

async fn every_unusable_token_is_just_inactive(app: TestApp) {
    inactive(&app, "not a key", "malformed").await;
    inactive(&app, "", "empty").await;
    let made = app.create_named("doomed").await;
    let (id, value) = (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    );
    // Well formed, unknown: the same key with another valid body and checksum.
    let unknown = app.create_named("forgotten").await;
    let unknown_value = unknown["value"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("{KEYS}/{}", unknown["id"].as_str().unwrap()))
            .await
            .status(),
        StatusCode::OK
    );
    inactive(&app, &unknown_value, "deleted").await;
    inactive(
        &app,
        &unknown_value,
        "deleted, again (from the negative cache)",
    )
    .await;

    let disabled = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": false }))
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    inactive(&app, &value, "disabled").await;
    let enabled = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": true }))
        .await;
    assert_eq!(enabled.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &value).await.1["active"], true);

    let member = app.add_member("owner").await;
    let (_, theirs) = app.key_for(&member, Some(&["admin_api_keys.read"])).await;
    assert_eq!(introspect(&app, &theirs).await.1["active"], true);
    let off = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "enabled": false }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    inactive(&app, &theirs, "disabled owner").await;

    let short = app
        .create_key(json!({ "name": "short", "expires_in_seconds": 10 }))
        .await;
    app.clock.advance(10);
    inactive(&app, short["value"].as_str().unwrap(), "expired").await;
}

async fn the_caller_needs_its_own_key_with_keys_introspect(app: TestApp) {
    let without = app
        .create_key(json!({ "name": "no introspect", "scopes": ["admin_api_keys.read"] }))
        .await;
    let response = app
        .request_as(without["value"].as_str().unwrap(), Method::POST, INTROSPECT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", app.admin_key.as_str())]).unwrap())
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::FORBIDDEN, "no keys.introspect").await;
    assert_eq!(error["code"], "missing_scope.keys.introspect");
    let anonymous = app
        .client
        .post(app.url(INTROSPECT))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", app.admin_key.as_str())]).unwrap())
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "no caller key").await;
    // Unprefixed too, and only POST.
    let (status, _) = read(
        app.request(Method::POST, "/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([("token", "x")]).unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get(INTROSPECT).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

async fn invalid_bodies_are_400s(app: TestApp) {
    let form = |body: &'static str| {
        app.request(Method::POST, INTROSPECT)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    for (body, param) in [
        ("token_type_hint=x", Some("token")),
        ("token=a&token=b", Some("token")),
        ("token=a&client_secret=b", Some("client_secret")),
    ] {
        let error = assert_error(form(body).await.unwrap(), StatusCode::BAD_REQUEST, body).await;
        assert_eq!(error["param"].as_str(), param, "{body}");
    }
    let secret_name = format!("{}=1", app.admin_key);
    let response = app
        .request(Method::POST, INTROSPECT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(secret_name)
        .send()
        .await
        .unwrap();
    let error = assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "a secret as a field name",
    )
    .await;
    assert!(!error.to_string().contains(&app.admin_key[12..]), "{error}");
    for body in [
        json!({ "token": 7 }),
        json!({}),
        json!({ "token": "x", "extra": 1 }),
    ] {
        let response = app.post_json(INTROSPECT, &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
    }
}

async fn a_demoted_owners_key_shows_only_its_effective_scopes(app: TestApp) {
    let member = app.add_member("owner").await;
    let (_, theirs) = app
        .key_for(
            &member,
            Some(&["admin_api_keys.read", "admin_api_keys.write"]),
        )
        .await;
    assert_eq!(
        introspect(&app, &theirs).await.1["scope"],
        "admin_api_keys.read admin_api_keys.write"
    );
    let demoted = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "role": "reader" }),
        )
        .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    let (_, body) = introspect(&app, &theirs).await;
    assert_eq!(body["scope"], "admin_api_keys.read");
    assert_eq!(
        body["key"]["scopes"],
        json!(["admin_api_keys.read", "admin_api_keys.write"]),
        "the grant is kept"
    );
}

async fn introspection_counts_as_a_use_and_needs_no_query_once_cached(app: TestApp) {
    let made = app.create_named("used by introspection").await;
    let (id, value) = (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    );
    app.clock.advance(5);
    assert_eq!(introspect(&app, &value).await.1["active"], true);
    let (_, shown) = read(app.get(&format!("{KEYS}/{id}")).await).await;
    assert_eq!(shown["last_used_at"], json!(crate::helpers::START + 5));

    // Warm (a first fill may be voided by the notification of the key's creation), then count.
    let unknown = "sk-admin-0000000000000000000000000000000000000000000000";
    for _ in 0..20 {
        let before = app.queries();
        introspect(&app, &value).await;
        introspect(&app, unknown).await;
        if app.queries() == before {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let before = app.queries();
    for _ in 0..20 {
        assert_eq!(introspect(&app, &value).await.1["active"], true);
        inactive(&app, unknown, "unknown, in the negative cache").await;
    }
    assert_eq!(
        app.queries() - before,
        0,
        "introspection of cached tokens queried the database"
    );
}

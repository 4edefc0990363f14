use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, assert_error, read};

backend_tests!(
    create_returns_the_key_object_with_its_value_once,
    created_value_follows_the_documented_format,
    create_with_expires_in_seconds_sets_expires_at,
    create_accepts_the_limits_of_each_field,
    create_trims_the_name,
    create_rejects_invalid_bodies_naming_the_param,
    created_key_authenticates_and_inherits_the_creators_owner,
    concurrent_creates_all_succeed,
);

const PATH: &str = "/v1/organization/admin_api_keys";

async fn create_returns_the_key_object_with_its_value_once(app: TestApp) {
    let response = app.post_json(PATH, &json!({ "name": "Deploy bot" })).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, key) = read(response).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(key["object"], "organization.admin_api_key");
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(key["name"], "Deploy bot");
    assert_eq!(key["created_at"], START);
    assert_eq!(key["last_used_at"], Value::Null);
    assert!(key.as_object().unwrap().contains_key("expires_at"));
    assert_eq!(key["expires_at"], Value::Null);
    let owner = &key["owner"];
    assert_eq!(owner["type"], "user");
    assert_eq!(owner["object"], "organization.user");
    assert_eq!(owner["id"], app.owner_id.as_str());
    assert_eq!(owner["name"], "Test Owner");
    assert_eq!(owner["created_at"], START);
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner.as_object().unwrap().len(), 6, "{owner}");
    let value = key["value"].as_str().unwrap();
    let redacted = key["redacted_value"].as_str().unwrap();
    assert_eq!(
        redacted,
        format!("{}...{}", &value[..8], &value[value.len() - 3..])
    );
}

async fn created_value_follows_the_documented_format(app: TestApp) {
    // README: ^sk-admin-[0-9A-Za-z]{46}$, the last 6 being a base62 CRC32 of the rest.
    let mut seen = std::collections::HashSet::new();
    for i in 0..5 {
        let key = app.create_named(&format!("k{i}")).await;
        let value = key["value"].as_str().unwrap().to_owned();
        assert_eq!(value.len(), 55, "{value}");
        assert!(value.starts_with("sk-admin-"), "{value}");
        assert!(
            value[9..].bytes().all(|b| b.is_ascii_alphanumeric()),
            "{value}"
        );
        assert!(
            admin_api_keys::domain::secret::is_well_formed(&value),
            "{value}"
        );
        assert!(seen.insert(value), "a key value repeated");
    }
}

async fn create_with_expires_in_seconds_sets_expires_at(app: TestApp) {
    let key = app
        .create_key(json!({ "name": "short", "expires_in_seconds": 3600 }))
        .await;

    assert_eq!(key["expires_at"], START + 3600);
}

async fn create_accepts_the_limits_of_each_field(app: TestApp) {
    let long_name = "n".repeat(256);
    let cases = [
        json!({ "name": long_name, "expires_in_seconds": 31_536_000 }),
        json!({ "name": "x", "expires_in_seconds": 1 }),
        json!({ "name": "null expiry", "expires_in_seconds": null }),
        json!({ "name": "Ünïcödé 🔑" }),
    ];
    for body in cases {
        let key = app.create_key(body.clone()).await;
        assert_eq!(key["name"], body["name"], "{body}");
    }
}

async fn create_trims_the_name(app: TestApp) {
    let key = app.create_named("  padded  ").await;

    assert_eq!(key["name"], "padded");
}

async fn create_rejects_invalid_bodies_naming_the_param(app: TestApp) {
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (json!({}), Some("name"), "name missing"),
        (json!({ "name": null }), Some("name"), "name null"),
        (json!({ "name": "" }), Some("name"), "name empty"),
        (json!({ "name": "   " }), Some("name"), "name only spaces"),
        (
            json!({ "name": "n".repeat(257) }),
            Some("name"),
            "name too long",
        ),
        (
            json!({ "name": "a\u{0000}b" }),
            Some("name"),
            "name with NUL",
        ),
        (
            json!({ "name": "line\nbreak" }),
            Some("name"),
            "name with newline",
        ),
        (json!({ "name": 42 }), Some("name"), "name not a string"),
        (
            json!({ "name": "k", "expires_in_seconds": 0 }),
            Some("expires_in_seconds"),
            "expiry zero",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": -5 }),
            Some("expires_in_seconds"),
            "expiry negative",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": 31_536_001 }),
            Some("expires_in_seconds"),
            "expiry too long",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": 1.5 }),
            Some("expires_in_seconds"),
            "expiry fractional",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": "60" }),
            Some("expires_in_seconds"),
            "expiry a string",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": 1e30 }),
            Some("expires_in_seconds"),
            "expiry huge",
        ),
        (
            json!({ "name": "k", "expires_in": 60 }),
            Some("expires_in"),
            "unknown field (a typo must not make a key that never expires)",
        ),
        (json!(["name"]), None, "body is an array"),
        (json!("name"), None, "body is a string"),
    ];
    for (body, param, why) in cases {
        let response = app.post_json(PATH, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, why).await;
        assert_eq!(error["type"], "invalid_request_error", "{why}");
        assert_eq!(error["param"].as_str(), param, "{why}: {error}");
    }

    let keys = app.list("limit=100").await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        1,
        "a rejected create stored a key"
    );
}

async fn created_key_authenticates_and_inherits_the_creators_owner(app: TestApp) {
    let child = app.create_named("child").await;
    let child_value = child["value"].as_str().unwrap();

    let grandchild = app
        .request_as(child_value, Method::POST, PATH)
        .json(&json!({ "name": "grandchild" }))
        .send()
        .await
        .unwrap();
    let (status, grandchild) = read(grandchild).await;

    assert_eq!(status, StatusCode::OK, "{grandchild}");
    assert_eq!(grandchild["owner"]["id"], app.owner_id.as_str());
    assert_eq!(grandchild["owner"], child["owner"]);
}

async fn concurrent_creates_all_succeed(app: TestApp) {
    // SQLite once answered some of these with "database is locked" (500).
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let request = app
                .request(Method::POST, PATH)
                .json(&json!({ "name": format!("parallel {i}") }));
            actix_web::rt::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap(), StatusCode::OK);
    }

    let listed = app.list("limit=100").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 41);
    let audit = app.get("/v1/organization/audit_logs?limit=100").await;
    // One entry per key, and bootstrap's `user.added`.
    assert_eq!(read(audit).await.1["data"].as_array().unwrap().len(), 42);
}

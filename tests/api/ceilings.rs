//! A member's standing caps what their keys can do downstream: a key's effective permissions
//! (what forward auth and introspection answer) are its own within its owner's `permissions`
//! ceiling, owners holding every permission. Demoting, disabling or deleting a user changes
//! the answer on the very next request, no route hands out downstream access its caller does
//! not cover, and a key left with nothing is refused.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    users_show_their_permission_ceiling,
    demoting_an_owner_stops_their_keys_permissions_downstream_on_the_next_request,
    a_key_left_with_no_scope_and_no_permission_is_refused_downstream,
    disabling_or_deleting_a_user_stops_their_keys_downstream_on_the_next_request,
    re_enabling_a_user_needs_the_caller_to_cover_what_their_keys_regain,
    widening_a_ceiling_or_promoting_needs_the_caller_to_cover_it,
    a_keys_permissions_must_fit_its_owners_ceiling,
    a_readers_ceiling_narrows_a_wider_key_pattern,
    inviting_an_owner_needs_a_caller_holding_every_permission,
    ceiling_changes_are_validated_and_audited,
    through_nginx_a_demoted_owners_key_stops_reaching_the_upstream,
);

const USERS: &str = "/v1/organization/users";
const KEYS: &str = "/v1/organization/admin_api_keys";
const FORWARD: &str = "/v1/forward-auth";

fn user_path(id: &str) -> String {
    format!("{USERS}/{id}")
}

/// A key for `owner` made by the bootstrap key with `scopes` and `permissions`: (id, value).
async fn key_with(
    app: &TestApp,
    owner: &str,
    scopes: &[&str],
    permissions: &[&str],
) -> (String, String) {
    let made = app
        .create_key(json!({
            "name": "downstream",
            "owner_id": owner,
            "scopes": scopes,
            "permissions": permissions,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

/// Forward auth of `key` requiring `permission` (none when empty): status, error code and the
/// permissions header.
async fn forward(app: &TestApp, key: &str, permission: &str) -> (u16, Value, Option<String>) {
    let path = if permission.is_empty() {
        FORWARD.to_owned()
    } else {
        format!("{FORWARD}?permission={permission}")
    };
    let response = app
        .request_as(key, Method::GET, &path)
        .send()
        .await
        .unwrap();
    let header = response
        .headers()
        .get("x-api-key-permissions")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].clone(), header)
}

/// Introspection of `token` by the bootstrap key.
async fn introspect(app: &TestApp, token: &str) -> Value {
    let (status, body) = read(
        app.post_json("/v1/introspect", &json!({ "token": token }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Changes the user `id` with `key`: status and body.
async fn modify_as(app: &TestApp, key: &str, id: &str, body: Value) -> (StatusCode, Value) {
    read(
        app.send_as(key, Method::POST, &user_path(id), Some(&body))
            .await,
    )
    .await
}

/// Changes the user `id` with the bootstrap key, asserting 200; returns the user.
async fn set(app: &TestApp, id: &str, body: Value) -> Value {
    let (status, changed) = modify_as(app, &app.admin_key, id, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}: {changed}");
    changed
}

/// A key of the bootstrap owner for incident response: it holds every scope (so the role
/// rules never stand in its way), and `permissions` downstream.
async fn responder(app: &TestApp, permissions: &[&str]) -> String {
    let every_scope = [
        "admin_api_keys.read",
        "admin_api_keys.write",
        "audit_logs.read",
        "keys.introspect",
        "projects.read",
        "projects.write",
        "users.read",
        "users.write",
    ];
    key_with(app, &app.owner_id, &every_scope, permissions)
        .await
        .1
}

async fn users_show_their_permission_ceiling(app: TestApp) {
    let (status, owner) = read(app.get(&user_path(&app.owner_id)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        owner["permissions"],
        json!(["*"]),
        "an owner holds every permission"
    );
    let reader = app.add_member("reader").await;
    let (_, shown) = read(app.get(&user_path(&reader)).await).await;
    assert_eq!(shown["permissions"], json!([]), "a reader starts with none");
    let listed = read(app.get(USERS).await).await.1;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["permissions"].is_array()),
        "{listed}"
    );
}

async fn demoting_an_owner_stops_their_keys_permissions_downstream_on_the_next_request(
    app: TestApp,
) {
    let owner = app.add_member("owner").await;
    let (_, key) = key_with(&app, &owner, &["admin_api_keys.read"], &["billing:*"]).await;
    let (status, _, header) = forward(&app, &key, "billing:read").await;
    assert_eq!(status, 200);
    assert_eq!(header.as_deref(), Some("billing:*"));
    assert_eq!(
        introspect(&app, &key).await["permissions"],
        json!(["billing:*"])
    );

    // Demoted with no ceiling: the very next check refuses, and introspection shows nothing.
    let demoted = set(&app, &owner, json!({ "role": "reader" })).await;
    assert_eq!(demoted["permissions"], json!([]));
    let (status, code, _) = forward(&app, &key, "billing:read").await;
    assert_eq!((status, code), (403, json!("missing_permission")));
    let seen = introspect(&app, &key).await;
    assert_eq!(seen["active"], true, "it still reads: {seen}");
    assert_eq!(seen["permissions"], json!([]));
    let (status, _, header) = forward(&app, &key, "").await;
    assert_eq!(status, 200, "the key still holds a read scope");
    assert_eq!(header.as_deref(), Some(""));

    // Demoted with a ceiling: the key keeps what fits within it.
    set(&app, &owner, json!({ "role": "owner" })).await;
    assert_eq!(forward(&app, &key, "billing:write").await.0, 200);
    set(
        &app,
        &owner,
        json!({ "role": "reader", "permissions": ["billing:read"] }),
    )
    .await;
    assert_eq!(forward(&app, &key, "billing:read").await.0, 200);
    let (status, code, _) = forward(&app, &key, "billing:write").await;
    assert_eq!((status, code), (403, json!("missing_permission")));
    assert_eq!(
        introspect(&app, &key).await["permissions"],
        json!(["billing:read"])
    );
}

async fn a_key_left_with_no_scope_and_no_permission_is_refused_downstream(app: TestApp) {
    let owner = app.add_member("owner").await;
    // Only write scopes (nothing a reader may hold) and a permission.
    let (_, key) = key_with(&app, &owner, &["admin_api_keys.write"], &["billing:*"]).await;
    assert_eq!(forward(&app, &key, "").await.0, 200);
    set(&app, &owner, json!({ "role": "reader" })).await;
    // Nothing is required, and still the key is refused: it can do nothing.
    let (status, code, _) = forward(&app, &key, "").await;
    assert_eq!((status, code), (403, json!("no_effective_access")));
    assert_eq!(introspect(&app, &key).await, json!({ "active": false }));
    // A ceiling that gives it one permission back makes it a key again.
    set(&app, &owner, json!({ "permissions": ["billing:read"] })).await;
    assert_eq!(forward(&app, &key, "").await.0, 200);
    assert_eq!(introspect(&app, &key).await["active"], true);
}

async fn disabling_or_deleting_a_user_stops_their_keys_downstream_on_the_next_request(
    app: TestApp,
) {
    let owner = app.add_member("owner").await;
    let (_, key) = key_with(&app, &owner, &["admin_api_keys.read"], &["*"]).await;
    assert_eq!(forward(&app, &key, "anything").await.0, 200);
    set(&app, &owner, json!({ "enabled": false })).await;
    let (status, code, _) = forward(&app, &key, "anything").await;
    assert_eq!((status, code), (401, json!("user_disabled")));
    assert_eq!(introspect(&app, &key).await, json!({ "active": false }));
    set(&app, &owner, json!({ "enabled": true })).await;
    assert_eq!(forward(&app, &key, "anything").await.0, 200);
    assert_eq!(
        app.delete(&user_path(&owner)).await.status(),
        StatusCode::OK
    );
    let (status, code, _) = forward(&app, &key, "anything").await;
    assert_eq!((status, code), (401, json!("invalid_api_key")));
    assert_eq!(introspect(&app, &key).await, json!({ "active": false }));
}

async fn re_enabling_a_user_needs_the_caller_to_cover_what_their_keys_regain(app: TestApp) {
    let owner = app.add_member("owner").await;
    let (_, key) = key_with(&app, &owner, &["admin_api_keys.read"], &["*"]).await;
    // An incident responder holding users.write and no permissions may disable the user...
    let narrow = responder(&app, &[]).await;
    let (status, body) = modify_as(&app, &narrow, &owner, json!({ "enabled": false })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...but not undo it: that would hand `*` back downstream.
    let refused = app
        .send_as(
            &narrow,
            Method::POST,
            &user_path(&owner),
            Some(&json!({ "enabled": true })),
        )
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "re-enable without cover").await;
    assert_eq!(error["code"], "missing_permission");
    let message = error["message"].as_str().unwrap();
    assert!(!message.contains("  "), "no runs of spaces: {message:?}");
    assert_eq!(
        forward(&app, &key, "billing:read").await.0,
        401,
        "still disabled"
    );
    // A responder covering only part of it cannot either.
    let partial = responder(&app, &["billing:*"]).await;
    let (status, _) = modify_as(&app, &partial, &owner, json!({ "enabled": true })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // One that covers it can.
    let (status, body) = modify_as(&app, &app.admin_key, &owner, json!({ "enabled": true })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(forward(&app, &key, "billing:read").await.0, 200);

    // A user whose keys hold no permissions regains nothing downstream: no cover needed.
    let plain = app.add_member("reader").await;
    key_with(&app, &plain, &["admin_api_keys.read"], &[]).await;
    for enabled in [false, true] {
        let (status, body) = modify_as(&app, &narrow, &plain, json!({ "enabled": enabled })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn widening_a_ceiling_or_promoting_needs_the_caller_to_cover_it(app: TestApp) {
    let reader = app.add_member("reader").await;
    let billing = responder(&app, &["billing:*"]).await;
    let (status, body) = modify_as(
        &app,
        &billing,
        &reader,
        json!({ "permissions": ["billing:read"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["permissions"], json!(["billing:read"]));
    for (change, what) in [
        (
            json!({ "permissions": ["billing:read", "ops"] }),
            "a permission it lacks",
        ),
        (json!({ "permissions": ["*"] }), "every permission"),
        (
            json!({ "role": "owner" }),
            "promotion (an owner holds every permission)",
        ),
    ] {
        let response = app
            .send_as(&billing, Method::POST, &user_path(&reader), Some(&change))
            .await;
        let error = assert_error(response, StatusCode::FORBIDDEN, what).await;
        assert_eq!(error["code"], "missing_permission", "{what}");
    }
    // Narrowing needs no cover.
    let narrow = responder(&app, &[]).await;
    let (status, body) = modify_as(&app, &narrow, &reader, json!({ "permissions": [] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Promotion by a caller holding `*`: the user now holds every permission.
    let promoted = set(&app, &reader, json!({ "role": "owner" })).await;
    assert_eq!(promoted["permissions"], json!(["*"]));
}

async fn a_keys_permissions_must_fit_its_owners_ceiling(app: TestApp) {
    let reader = app.add_member("reader").await;
    set(&app, &reader, json!({ "permissions": ["billing:read"] })).await;
    let refused = app
        .post_json(
            KEYS,
            &json!({ "name": "too wide", "owner_id": reader, "scopes": ["admin_api_keys.read"], "permissions": ["billing:*"] }),
        )
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "create beyond the ceiling").await;
    assert_eq!(error["code"], "permission_exceeds_owner");
    let (key_id, _) = key_with(&app, &reader, &["admin_api_keys.read"], &["billing:read"]).await;
    let refused = app
        .post_json(
            &format!("{KEYS}/{key_id}"),
            &json!({ "permissions": ["ops"] }),
        )
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "update beyond the ceiling").await;
    assert_eq!(error["code"], "permission_exceeds_owner");
}

async fn a_readers_ceiling_narrows_a_wider_key_pattern(app: TestApp) {
    let owner = app.add_member("owner").await;
    let (_, key) = key_with(
        &app,
        &owner,
        &["admin_api_keys.read"],
        &["billing:*", "ops"],
    )
    .await;
    set(
        &app,
        &owner,
        json!({ "role": "reader", "permissions": ["billing:invoices:*", "reports"] }),
    )
    .await;
    let (status, _, header) = forward(&app, &key, "billing:invoices:read").await;
    assert_eq!(status, 200);
    assert_eq!(header.as_deref(), Some("billing:invoices:*"));
    for denied in ["billing:refunds", "ops", "reports"] {
        assert_eq!(forward(&app, &key, denied).await.0, 403, "{denied}");
    }
}

async fn inviting_an_owner_needs_a_caller_holding_every_permission(app: TestApp) {
    let narrow = responder(&app, &["billing:*"]).await;
    let invite = |email: &str, role: &str| json!({ "email": email, "role": role });
    let refused = app
        .send_as(
            &narrow,
            Method::POST,
            "/v1/organization/invites",
            Some(&invite("new-owner@example.com", "owner")),
        )
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "owner invite").await;
    assert_eq!(error["code"], "missing_permission");
    let reader = app
        .send_as(
            &narrow,
            Method::POST,
            "/v1/organization/invites",
            Some(&invite("new-reader@example.com", "reader")),
        )
        .await;
    assert_eq!(reader.status(), StatusCode::OK);
}

async fn ceiling_changes_are_validated_and_audited(app: TestApp) {
    let owner = app.add_member("owner").await;
    for (body, param) in [
        (json!({ "permissions": ["billing:read"] }), "permissions"),
        (json!({ "permissions": ["not valid"] }), "permissions"),
        (json!({ "permissions": "billing:read" }), "permissions"),
        (json!({ "permissions": null }), "permissions"),
        (
            json!({ "role": "owner", "permissions": ["x"] }),
            "permissions",
        ),
    ] {
        let response = app.post_json(&user_path(&owner), &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param, "{body}");
        assert!(
            !error["message"].as_str().unwrap().contains("not valid"),
            "the value is not echoed"
        );
    }
    set(
        &app,
        &owner,
        json!({ "role": "reader", "permissions": ["reports:*"] }),
    )
    .await;
    let (_, log) = read(
        app.get("/v1/organization/audit_logs?event_types[]=user.updated")
            .await,
    )
    .await;
    let changes = &log["data"][0]["user.updated"]["changes_requested"];
    assert_eq!(changes["permissions"], json!(["reports:*"]), "{log}");
    assert_eq!(changes["role"], "reader");
}

async fn through_nginx_a_demoted_owners_key_stops_reaching_the_upstream(app: TestApp) {
    let port = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let Some(nginx) = crate::nginx::Nginx::start(port) else {
        return;
    };
    let owner = app.add_member("owner").await;
    let (_, key) = key_with(&app, &owner, &["admin_api_keys.read"], &["billing:*"]).await;
    // The shipped config's /billing/ location requires billing:read.
    let through = async || {
        reqwest::Client::new()
            .get(nginx.url("/billing/invoices"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(through().await, StatusCode::OK);
    set(&app, &owner, json!({ "role": "reader" })).await;
    assert_eq!(through().await, StatusCode::FORBIDDEN, "demoted");
    set(&app, &owner, json!({ "permissions": ["billing:read"] })).await;
    assert_eq!(through().await, StatusCode::OK, "a ceiling covering it");
}

/// Retries `check` for up to a second.
async fn within_a_second(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let since = Instant::now();
    while !check().await {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{what}: not seen on the other replica within a second"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn demoting_a_user_reaches_forward_auth_on_another_replica_within_a_second() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let owner = a.add_member("owner").await;
    let (_, key) = key_with(&a, &owner, &["admin_api_keys.read"], &["billing:*"]).await;
    within_a_second("the new key", async || {
        forward(&b, &key, "billing:read").await.0 == 200
    })
    .await;
    // Cached on B now: a few more checks cost it nothing.
    for _ in 0..3 {
        assert_eq!(forward(&b, &key, "billing:read").await.0, 200);
    }
    set(&a, &owner, json!({ "role": "reader" })).await;
    within_a_second("demotion", async || {
        forward(&b, &key, "billing:read").await.0 == 403
    })
    .await;
    set(&a, &owner, json!({ "permissions": ["billing:read"] })).await;
    within_a_second("a new ceiling", async || {
        forward(&b, &key, "billing:read").await.0 == 200
    })
    .await;
    assert_eq!(forward(&b, &key, "billing:write").await.0, 403);
}

//! Key permissions: strings for the operator's own services, granted without escalation,
//! copied by rotation, searchable, and audited.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    keys_show_their_permissions_and_bootstrap_holds_every_one,
    invalid_permissions_are_400s_that_never_repeat_them,
    a_key_grants_only_permissions_its_own_cover,
    update_replaces_or_clears_permissions_and_re_enabling_needs_them,
    rotation_copies_permissions_and_needs_the_caller_to_cover_them,
    the_permission_filter_finds_keys_holding_exactly_it,
    permission_changes_are_audited,
);

const KEYS: &str = "/v1/organization/admin_api_keys";

/// A key of the bootstrap owner with every scope and `permissions`; its (id, value).
async fn granter(app: &TestApp, permissions: &[&str]) -> (String, String) {
    let made = app
        .create_key(json!({
            "name": "granter",
            "scopes": ["admin_api_keys.read", "admin_api_keys.write", "users.read", "users.write"],
            "permissions": permissions,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

async fn create_as(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.send_as(key, Method::POST, KEYS, Some(&body)).await
}

async fn keys_show_their_permissions_and_bootstrap_holds_every_one(app: TestApp) {
    let plain = app.create_named("no permissions").await;
    assert_eq!(plain["permissions"], json!([]));
    let given = app
        .create_key(json!({ "name": "billing", "permissions": ["reports:read", "billing:*", "reports:read"] }))
        .await;
    assert_eq!(
        given["permissions"],
        json!(["billing:*", "reports:read"]),
        "sorted, without repeats"
    );
    let (_, boot) = read(app.get(&format!("{KEYS}/{}", app.admin_key_id)).await).await;
    assert_eq!(boot["permissions"], json!(["*"]));
    let listed = app.list("limit=100").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["permissions"].is_array())
    );
}

async fn invalid_permissions_are_400s_that_never_repeat_them(app: TestApp) {
    let secretish = "sk-admin-abc def";
    let cases = [
        (json!(["ok", secretish]), "permissions"),
        (json!(["a*b"]), "permissions"),
        (json!(["**"]), "permissions"),
        (json!([""]), "permissions"),
        (json!(["x".repeat(129)]), "permissions"),
        (
            json!((0..65).map(|n| format!("p{n}")).collect::<Vec<_>>()),
            "permissions",
        ),
        (json!("billing:read"), "permissions"),
        (json!([7]), "permissions[0]"),
        (Value::Null, "permissions"),
    ];
    for (permissions, param) in cases {
        let body = json!({ "name": "bad", "permissions": permissions });
        let response = app.post_json(KEYS, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param, "{body}");
        assert!(
            !error["message"].as_str().unwrap().contains("abc def"),
            "{error}"
        );
    }
}

async fn a_key_grants_only_permissions_its_own_cover(app: TestApp) {
    let (_, billing) = granter(&app, &["billing:*", "reports:read"]).await;
    for ok in [
        json!(["billing:read"]),
        json!(["billing:*"]),
        json!(["billing:refunds:*", "reports:read"]),
        json!([]),
    ] {
        let response = create_as(&app, &billing, json!({ "name": "ok", "permissions": ok })).await;
        assert_eq!(response.status(), StatusCode::OK, "{ok}");
    }
    for refused in [
        json!(["reports:write"]),
        json!(["*"]),
        json!(["billing*"]),
        json!(["reports:*"]),
    ] {
        let response = create_as(
            &app,
            &billing,
            json!({ "name": "no", "permissions": refused }),
        )
        .await;
        let error = assert_error(response, StatusCode::FORBIDDEN, &refused.to_string()).await;
        assert_eq!(error["code"], "missing_permission");
    }
    // Left out, a new key holds none (not the caller's).
    let (status, made) = read(create_as(&app, &billing, json!({ "name": "default" })).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(made["permissions"], json!([]));
}

async fn update_replaces_or_clears_permissions_and_re_enabling_needs_them(app: TestApp) {
    let target = app
        .create_key(json!({ "name": "target", "scopes": ["admin_api_keys.read"], "permissions": ["a", "b"] }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{KEYS}/{target}");
    let (status, changed) = read(
        app.post_json(&path, &json!({ "permissions": ["c:*"] }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["permissions"], json!(["c:*"]));
    let (_, cleared) = read(app.post_json(&path, &json!({ "permissions": [] })).await).await;
    assert_eq!(cleared["permissions"], json!([]));

    let (_, narrow) = granter(&app, &["c:*"]).await;
    let (_, _) = read(
        app.post_json(&path, &json!({ "permissions": ["a"], "enabled": false }))
            .await,
    )
    .await;
    let refused = app
        .send_as(
            &narrow,
            Method::POST,
            &path,
            Some(&json!({ "enabled": true })),
        )
        .await;
    let error = assert_error(
        refused,
        StatusCode::FORBIDDEN,
        "re-enable a key holding more",
    )
    .await;
    assert_eq!(error["code"], "missing_permission");
    let refused = app
        .send_as(
            &narrow,
            Method::POST,
            &path,
            Some(&json!({ "permissions": ["d"] })),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "grant by update").await;
    let (_, still) = read(app.get(&path).await).await;
    assert_eq!(
        (still["permissions"].clone(), still["enabled"].clone()),
        (json!(["a"]), json!(false))
    );
}

async fn rotation_copies_permissions_and_needs_the_caller_to_cover_them(app: TestApp) {
    let old = app
        .create_key(json!({ "name": "old", "scopes": ["admin_api_keys.read"], "permissions": ["x:read", "y"] }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, narrow) = granter(&app, &["x:*"]).await;
    let rotate = format!("{KEYS}/{old}/rotate");
    let refused = app.send_as(&narrow, Method::POST, &rotate, None).await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "rotate a key holding more").await;
    assert_eq!(error["code"], "missing_permission");
    let (status, rotated) = read(app.request(Method::POST, &rotate).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["permissions"], json!(["x:read", "y"]));
}

async fn the_permission_filter_finds_keys_holding_exactly_it(app: TestApp) {
    let pattern = app
        .create_key(json!({ "name": "p1", "permissions": ["billing:*"] }))
        .await;
    let exact = app
        .create_key(json!({ "name": "p2", "permissions": ["billing:read", "other"] }))
        .await;
    app.create_key(json!({ "name": "p3", "permissions": ["billing:readonly"] }))
        .await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&app.list("permission=billing:read").await),
        vec![exact["id"].as_str().unwrap()]
    );
    assert_eq!(
        ids(&app.list("permission=billing:*").await),
        vec![pattern["id"].as_str().unwrap()]
    );
    assert_eq!(
        ids(&app.list("permission=billing").await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app.list("permission=other&search=p2").await),
        vec![exact["id"].as_str().unwrap()]
    );
    for bad in ["permission=a%20b", "permission=a*b"] {
        let response = app.get(&format!("{KEYS}?{bad}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, bad).await;
        assert_eq!(error["param"], "permission");
        let message = error["message"].as_str().unwrap();
        assert!(!message.contains("  "), "no runs of spaces: {message:?}");
    }
}

async fn permission_changes_are_audited(app: TestApp) {
    let made = app
        .create_key(json!({ "name": "audited", "permissions": ["a:*"] }))
        .await;
    let id = made["id"].as_str().unwrap();
    app.clock.advance(1); // entries of one second are ordered by id, not by time of writing
    let changed = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "permissions": ["b"] }))
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let (_, log) = read(
        app.get(&format!("/v1/organization/audit_logs?resource_ids[]={id}"))
            .await,
    )
    .await;
    let entries = log["data"].as_array().unwrap();
    assert_eq!(
        entries[0]["api_key.updated"]["changes_requested"],
        json!({ "permissions": ["b"] })
    );
    assert_eq!(
        entries[1]["api_key.created"]["data"]["permissions"],
        json!(["a:*"])
    );
}

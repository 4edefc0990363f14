//! Scopes, disable/enable, partial update and the lock-out guard (issue 3, first part).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, read};

backend_tests!(
    every_route_enforces_its_scope,
    a_key_cannot_grant_scopes_it_does_not_hold,
    new_keys_inherit_the_creators_scopes_and_are_enabled,
    disabling_a_key_rejects_it_and_enabling_restores_the_same_value,
    update_changes_only_the_fields_sent,
    update_rejects_invalid_fields_and_unknown_keys,
    the_last_active_writer_cannot_be_disabled_deleted_or_demoted,
);

const PATH: &str = "/v1/organization/admin_api_keys";

async fn key_with(app: &TestApp, scopes: &[&str]) -> (String, String) {
    let key = app
        .create_key(json!({ "name": format!("{scopes:?}"), "scopes": scopes }))
        .await;
    assert_eq!(key["scopes"], json!(scopes));
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

async fn patch(app: &TestApp, key: &str, id: &str, body: Value) -> reqwest::Response {
    app.request_as(key, Method::POST, &format!("{PATH}/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn every_route_enforces_its_scope(app: TestApp) {
    let (r, w, a) = (
        "admin_api_keys.read",
        "admin_api_keys.write",
        "audit_logs.read",
    );
    let routes = [
        "list", "retrieve", "create", "update", "rotate", "audit", "delete",
    ];
    let needs = [r, r, w, w, w, a, w];
    // (scopes held, expected status per route above)
    let matrix: [(&[&str], [u16; 7]); 5] = [
        (&[r], [200, 200, 403, 403, 403, 403, 403]),
        (&[w], [403, 403, 200, 200, 200, 403, 200]),
        (&[a], [403, 403, 403, 403, 403, 200, 403]),
        (&[r, w], [200, 200, 200, 200, 200, 403, 200]),
        (&[r, w, a], [200, 200, 200, 200, 200, 200, 200]),
    ];
    for (held, expected) in matrix {
        let (_, caller) = key_with(&app, held).await;
        // Every writer in the matrix may rotate it: it holds only the write scope.
        let (victim, _) = key_with(&app, &[w]).await;
        let requests = [
            app.request_as(&caller, Method::GET, PATH),
            app.request_as(&caller, Method::GET, &format!("{PATH}/{victim}")),
            app.request_as(&caller, Method::POST, PATH)
                .json(&json!({ "name": "child", "scopes": [held[0]] })),
            app.request_as(&caller, Method::POST, &format!("{PATH}/{victim}"))
                .json(&json!({ "name": "renamed" })),
            app.request_as(&caller, Method::POST, &format!("{PATH}/{victim}/rotate")),
            app.request_as(&caller, Method::GET, "/v1/organization/audit_logs"),
            app.request_as(&caller, Method::DELETE, &format!("{PATH}/{victim}")),
        ];
        for ((route, needed), (request, status)) in routes
            .iter()
            .zip(needs)
            .zip(requests.into_iter().zip(expected))
        {
            let response = request.send().await.unwrap();
            let why = format!("{route} with {held:?}");
            if status == 403 {
                let error = assert_error(response, StatusCode::FORBIDDEN, &why).await;
                assert_eq!(error["code"], format!("missing_scope.{needed}"), "{why}");
            } else {
                assert_eq!(response.status().as_u16(), status, "{why}");
            }
        }
    }
}

async fn a_key_cannot_grant_scopes_it_does_not_hold(app: TestApp) {
    let (_, limited) = key_with(&app, &["admin_api_keys.read", "admin_api_keys.write"]).await;
    let (target, _) = key_with(&app, &["admin_api_keys.read"]).await;

    let create = app
        .request_as(&limited, Method::POST, PATH)
        .json(&json!({ "name": "escalated", "scopes": ["audit_logs.read"] }))
        .send()
        .await
        .unwrap();
    let error = assert_error(
        create,
        StatusCode::FORBIDDEN,
        "create with a scope not held",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.audit_logs.read");

    let update = patch(
        &app,
        &limited,
        &target,
        json!({ "scopes": ["admin_api_keys.read", "audit_logs.read"] }),
    )
    .await;
    assert_error(
        update,
        StatusCode::FORBIDDEN,
        "update granting a scope not held",
    )
    .await;

    let (_, shown) = read(app.get(&format!("{PATH}/{target}")).await).await;
    assert_eq!(
        shown["scopes"],
        json!(["admin_api_keys.read"]),
        "a refused update changed the key"
    );
}

async fn new_keys_inherit_the_creators_scopes_and_are_enabled(app: TestApp) {
    let boot = app.create_named("from bootstrap").await;
    assert_eq!(
        boot["scopes"],
        json!([
            "admin_api_keys.read",
            "admin_api_keys.write",
            "audit_logs.read",
            "keys.introspect",
            "projects.read",
            "projects.write",
            "users.read",
            "users.write"
        ])
    );
    assert_eq!(boot["enabled"], true);

    let (_, limited) = key_with(&app, &["admin_api_keys.write"]).await;
    let child = app
        .request_as(&limited, Method::POST, PATH)
        .json(&json!({ "name": "child" }))
        .send()
        .await
        .unwrap();
    let (status, child) = read(child).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(child["scopes"], json!(["admin_api_keys.write"]));
}

async fn disabling_a_key_rejects_it_and_enabling_restores_the_same_value(app: TestApp) {
    let (id, value) = key_with(&app, &["admin_api_keys.read"]).await;
    let call = || app.request_as(&value, Method::GET, PATH).send();

    let (status, disabled) =
        read(patch(&app, &app.admin_key, &id, json!({ "enabled": false })).await).await;
    assert_eq!(
        (status, &disabled["enabled"]),
        (StatusCode::OK, &json!(false))
    );
    let error = assert_error(call().await.unwrap(), StatusCode::UNAUTHORIZED, "disabled").await;
    assert_eq!(error["code"], "api_key_disabled");
    assert!(
        ids(&app.list("limit=100").await).contains(&id),
        "disabled keys stay listed"
    );

    let (_, enabled) =
        read(patch(&app, &app.admin_key, &id, json!({ "enabled": true })).await).await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(
        call().await.unwrap().status(),
        StatusCode::OK,
        "the same value works again"
    );
}

async fn update_changes_only_the_fields_sent(app: TestApp) {
    let (id, _) = key_with(&app, &["admin_api_keys.read"]).await;
    let (_, before) = read(app.get(&format!("{PATH}/{id}")).await).await;

    let (status, renamed) =
        read(patch(&app, &app.admin_key, &id, json!({ "name": "  renamed " })).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "renamed");
    for field in [
        "scopes",
        "enabled",
        "redacted_value",
        "created_at",
        "expires_at",
        "owner",
    ] {
        assert_eq!(renamed[field], before[field], "{field} changed");
    }

    let (_, rescoped) = read(
        patch(
            &app,
            &app.admin_key,
            &id,
            json!({ "scopes": ["audit_logs.read"] }),
        )
        .await,
    )
    .await;
    assert_eq!(rescoped["scopes"], json!(["audit_logs.read"]));
    assert_eq!(
        rescoped["name"], "renamed",
        "a scope change dropped the name"
    );

    // An empty update is a mistake (and must not let a write-only key read keys).
    let empty = patch(&app, &app.admin_key, &id, json!({})).await;
    assert_error(empty, StatusCode::BAD_REQUEST, "empty update").await;
    let (_, unchanged) = read(app.get(&format!("{PATH}/{id}")).await).await;
    assert_eq!(unchanged, rescoped);
}

async fn update_rejects_invalid_fields_and_unknown_keys(app: TestApp) {
    let (id, _) = key_with(&app, &["admin_api_keys.read"]).await;
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "name": 7 }), "name"),
        (json!({ "enabled": "no" }), "enabled"),
        (json!({ "scopes": [] }), "scopes"),
        (json!({ "scopes": ["admin_api_keys.delete"] }), "scopes[0]"),
        (json!({ "scopes": "admin_api_keys.read" }), "scopes"),
        (json!({ "owner": "someone" }), "owner"),
    ];
    for (body, param) in cases {
        let response = patch(&app, &app.admin_key, &id, body.clone()).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param, "{body}");
    }
    let missing = patch(&app, &app.admin_key, "key_nope", json!({ "name": "x" })).await;
    assert_error(missing, StatusCode::NOT_FOUND, "unknown key").await;
}

async fn the_last_active_writer_cannot_be_disabled_deleted_or_demoted(app: TestApp) {
    let boot = app.admin_key_id.clone();
    let (_, reader) = key_with(&app, &["admin_api_keys.read"]).await;
    // A writer that expires does not count once expired.
    let temp = app
        .create_key(json!({ "name": "temp writer", "expires_in_seconds": 10 }))
        .await;
    app.clock.advance(10);
    let _ = reader;

    let attempts = [
        (json!({ "enabled": false }), "disable"),
        (json!({ "scopes": ["admin_api_keys.read"] }), "demote"),
    ];
    for (body, why) in attempts {
        let error = assert_error(
            patch(&app, &app.admin_key, &boot, body).await,
            StatusCode::CONFLICT,
            why,
        )
        .await;
        assert_eq!(error["code"], "last_admin_key");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("admin-api-keys bootstrap"),
            "{why}"
        );
    }
    let delete = app.delete(&format!("{PATH}/{boot}")).await;
    assert_error(delete, StatusCode::CONFLICT, "delete").await;
    // Rotating the last writer into a key about to expire would lock everyone out shortly.
    let short = app
        .request(Method::POST, &format!("{PATH}/{boot}/rotate"))
        .json(&json!({ "expires_in_seconds": 60 }))
        .send()
        .await
        .unwrap();
    assert_error(short, StatusCode::CONFLICT, "rotate into a 60 s key").await;
    let (_, still) = read(app.get(&format!("{PATH}/{boot}")).await).await;
    assert_eq!(
        (
            still["enabled"].clone(),
            still["scopes"].as_array().unwrap().len()
        ),
        (json!(true), 8)
    );

    // With a second key able to run the organisation the same change is allowed.
    let (_, second) = key_with(&app, &["admin_api_keys.write", "users.write"]).await;
    let _ = temp;
    let (status, _) = read(patch(&app, &second, &boot, json!({ "enabled": false })).await).await;
    assert_eq!(status, StatusCode::OK);
}

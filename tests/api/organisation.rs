//! A new organisation run end to end over HTTP alone, after one `bootstrap`: a teammate is
//! invited, joins, is promoted, given a write key, disabled, re-enabled, demoted and finally
//! deleted with their keys, and every step is in the audit log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(an_organisation_runs_end_to_end_over_http);

const KEYS: &str = "/v1/organization/admin_api_keys";
const USERS: &str = "/v1/organization/users";
const INVITES: &str = "/v1/organization/invites";

/// `method path` with `key` and an optional JSON body: status and body.
async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.request_as(key, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("request sent")).await
}

/// Whether `key` may make a key (200) or is refused (the status), cleaning up after itself.
async fn can_create_key(app: &TestApp, key: &str) -> StatusCode {
    let (status, made) = call(
        app,
        key,
        Method::POST,
        KEYS,
        Some(json!({ "name": "probe" })),
    )
    .await;
    if status == StatusCode::OK {
        let id = made["id"].as_str().unwrap();
        let (deleted, _) = call(
            app,
            &app.admin_key,
            Method::DELETE,
            &format!("{KEYS}/{id}"),
            None,
        )
        .await;
        assert_eq!(deleted, StatusCode::OK);
    }
    status
}

async fn error_code(app: &TestApp, key: &str) -> Value {
    let (status, body) = call(app, key, Method::GET, KEYS, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    body["error"]["code"].clone()
}

async fn set_user(app: &TestApp, user_id: &str, change: Value) {
    let (status, body) = call(
        app,
        &app.admin_key,
        Method::POST,
        &format!("{USERS}/{user_id}"),
        Some(change),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn an_organisation_runs_end_to_end_over_http(app: TestApp) {
    let owner = app.admin_key.clone();

    // The owner invites a teammate as a reader; the teammate accepts with the token.
    let (status, invite) = call(
        &app,
        &owner,
        Method::POST,
        INVITES,
        Some(json!({ "email": "Grace@Example.com", "role": "reader" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{invite}");
    let token = invite["accept_token"]
        .as_str()
        .expect("an accept token")
        .to_owned();
    let accept = app
        .client
        .post(app.url(&format!("{INVITES}/accept")))
        .json(&json!({ "token": token, "name": "Grace Hopper" }))
        .send()
        .await
        .unwrap();
    let (status, joined) = read(accept).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let user_id = joined["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(joined["user"]["email"], "grace@example.com");
    assert_eq!(joined["user"]["role"], "reader");
    let read_key = joined["api_key"]["value"].as_str().unwrap().to_owned();
    let read_key_id = joined["api_key"]["id"].as_str().unwrap().to_owned();

    // A reader can read but not write.
    assert_eq!(
        call(&app, &read_key, Method::GET, KEYS, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, &read_key, Method::GET, USERS, None).await.0,
        StatusCode::OK
    );
    assert_eq!(can_create_key(&app, &read_key).await, StatusCode::FORBIDDEN);

    // Promoted, the reader's key stays read-only: a role is a ceiling, not a grant.
    set_user(&app, &user_id, json!({ "role": "owner" })).await;
    assert_eq!(can_create_key(&app, &read_key).await, StatusCode::FORBIDDEN);

    // The owner gives them a write key, and they make a key with it.
    let write = app
        .create_key(json!({
            "name": "Grace's writer",
            "owner_id": user_id,
            "scopes": ["admin_api_keys.read", "admin_api_keys.write"]
        }))
        .await;
    assert_eq!(write["owner"]["id"], user_id.as_str());
    let write_key = write["value"].as_str().unwrap().to_owned();
    let (status, made) = call(
        &app,
        &write_key,
        Method::POST,
        KEYS,
        Some(json!({ "name": "made by Grace" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["owner"]["id"], user_id.as_str());
    let made_key = made["value"].as_str().unwrap().to_owned();

    // Disabled: every key of theirs stops at once; re-enabled: they work again.
    set_user(&app, &user_id, json!({ "enabled": false })).await;
    for key in [&read_key, &write_key, &made_key] {
        assert_eq!(error_code(&app, key).await, "user_disabled");
    }
    set_user(&app, &user_id, json!({ "enabled": true })).await;
    assert_eq!(
        call(&app, &write_key, Method::GET, KEYS, None).await.0,
        StatusCode::OK
    );
    assert_eq!(can_create_key(&app, &write_key).await, StatusCode::OK);

    // Demoted: the write key loses write on the next request, and keeps read.
    set_user(&app, &user_id, json!({ "role": "reader" })).await;
    let refused = app
        .request_as(&write_key, Method::POST, KEYS)
        .json(&json!({ "name": "after demotion" }))
        .send()
        .await
        .unwrap();
    let error = assert_error(
        refused,
        StatusCode::FORBIDDEN,
        "a demoted owner's write key",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.write");
    assert_eq!(
        call(&app, &write_key, Method::GET, KEYS, None).await.0,
        StatusCode::OK
    );

    // Deleted with their keys: all three stop at once and are gone from the list.
    let (status, deleted) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("{USERS}/{user_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({ "object": "organization.user.deleted", "id": user_id, "deleted": true })
    );
    for key in [&read_key, &write_key, &made_key] {
        assert_eq!(error_code(&app, key).await, "invalid_api_key");
    }
    let (_, theirs) = call(
        &app,
        &owner,
        Method::GET,
        &format!("{KEYS}?owner_id={user_id}"),
        None,
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
    let (status, _) = call(
        &app,
        &owner,
        Method::GET,
        &format!("{USERS}/{user_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every step is in the audit log.
    let (_, log) = call(
        &app,
        &owner,
        Method::GET,
        "/v1/organization/audit_logs?limit=100",
        None,
    )
    .await;
    let entries = log["data"].as_array().unwrap();
    let count = |kind: &str| entries.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("invite.sent"), 1);
    assert_eq!(count("invite.accepted"), 1);
    assert_eq!(count("user.added"), 2, "bootstrap's owner and the teammate");
    assert_eq!(count("user.updated"), 4, "promote, disable, enable, demote");
    assert_eq!(count("user.deleted"), 1);
    // Bootstrap's, the teammate's first key, the write key, the key made with it, one probe.
    assert_eq!(count("api_key.created"), 5);
    // The probe, and the teammate's three keys with the user.
    assert_eq!(count("api_key.deleted"), 4);
    let accepted = entries
        .iter()
        .find(|e| e["type"] == "invite.accepted")
        .unwrap();
    assert_eq!(accepted["actor"]["type"], "session");
    assert_eq!(accepted["actor"]["session"]["user"]["id"], user_id.as_str());
    let removed: Vec<_> = entries
        .iter()
        .filter(|e| e["type"] == "api_key.deleted")
        .map(|e| e["api_key.deleted"]["id"].as_str().unwrap())
        .collect();
    assert!(removed.contains(&read_key_id.as_str()));
}

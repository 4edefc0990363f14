//! Rotation: a new secret with the same name, owner and scopes, and an optional overlap.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, assert_error, read};

backend_tests!(
    rotation_issues_a_new_key_and_stops_the_old_one_now_by_default,
    during_the_overlap_both_keys_work_and_last_used_at_shows_old_use,
    rotation_cannot_escalate_and_validates_its_fields,
    rotation_accepts_no_body_an_empty_body_or_null,
    without_expires_in_seconds_the_new_key_keeps_the_old_lifetime_from_now,
    a_key_is_rotated_once_and_a_second_rotation_names_the_successor,
    of_concurrent_rotations_of_one_key_exactly_one_succeeds,
);

const PATH: &str = "/v1/organization/admin_api_keys";

async fn rotate(app: &TestApp, key: &str, id: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.request_as(key, Method::POST, &format!("{PATH}/{id}/rotate"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn rotation_issues_a_new_key_and_stops_the_old_one_now_by_default(app: TestApp) {
    let old = app
        .create_key(json!({ "name": "ci", "scopes": ["admin_api_keys.read"] }))
        .await;
    let old_id = old["id"].as_str().unwrap();

    let (status, new) = read(rotate(&app, &app.admin_key, old_id, None).await).await;

    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(new["rotated_from"], old_id);
    assert_ne!(new["id"], old["id"]);
    assert_ne!(new["value"], old["value"]);
    for field in ["name", "owner", "scopes"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    assert_eq!(new["expires_at"], Value::Null);
    let (_, old_now) = read(app.get(&format!("{PATH}/{old_id}")).await).await;
    assert_eq!(old_now["expires_at"], START);
    let old_call = app
        .request_as(old["value"].as_str().unwrap(), Method::GET, PATH)
        .send()
        .await
        .unwrap();
    assert_error(old_call, StatusCode::UNAUTHORIZED, "old key after rotation").await;
    let new_call = app
        .request_as(new["value"].as_str().unwrap(), Method::GET, PATH)
        .send()
        .await
        .unwrap();
    assert_eq!(new_call.status(), StatusCode::OK);
}

async fn during_the_overlap_both_keys_work_and_last_used_at_shows_old_use(app: TestApp) {
    let old = app.create_named("deploy").await;
    let (old_id, old_value) = (old["id"].as_str().unwrap(), old["value"].as_str().unwrap());
    let body = json!({ "previous_key_expires_in_seconds": 3600, "expires_in_seconds": 86400 });
    let (status, new) = read(rotate(&app, &app.admin_key, old_id, Some(body)).await).await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(new["expires_at"], START + 86400);
    let call = |key: &str| app.request_as(key, Method::GET, PATH).send();

    app.clock.advance(3599);
    assert_eq!(
        call(old_value).await.unwrap().status(),
        StatusCode::OK,
        "old key inside overlap"
    );
    assert_eq!(
        call(new["value"].as_str().unwrap()).await.unwrap().status(),
        StatusCode::OK
    );
    let (_, shown) = read(app.get(&format!("{PATH}/{old_id}")).await).await;
    assert_eq!(shown["expires_at"], START + 3600);
    assert_eq!(
        shown["last_used_at"],
        START + 3599,
        "callers still use the old key"
    );

    app.clock.advance(1);
    let error = assert_error(
        call(old_value).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "after overlap",
    )
    .await;
    assert_eq!(error["code"], "api_key_expired");
}

async fn rotation_cannot_escalate_and_validates_its_fields(app: TestApp) {
    let limited = app
        .create_key(json!({ "name": "w", "scopes": ["admin_api_keys.write"] }))
        .await;
    let limited = limited["value"].as_str().unwrap();
    let target = app.create_named("full").await;
    let target_id = target["id"].as_str().unwrap();

    let error = assert_error(
        rotate(&app, limited, target_id, None).await,
        StatusCode::FORBIDDEN,
        "escalation",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.read");
    let (_, unchanged) = read(app.get(&format!("{PATH}/{target_id}")).await).await;
    assert_eq!(
        unchanged["expires_at"],
        Value::Null,
        "a refused rotation expired the old key"
    );

    let cases = [
        (
            json!({ "previous_key_expires_in_seconds": -1 }),
            "previous_key_expires_in_seconds",
        ),
        (
            json!({ "previous_key_expires_in_seconds": 604_801 }),
            "previous_key_expires_in_seconds",
        ),
        (json!({ "expires_in_seconds": 0 }), "expires_in_seconds"),
        (json!({ "name": "x" }), "name"),
    ];
    for (body, param) in cases {
        let response = rotate(&app, &app.admin_key, target_id, Some(body.clone())).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param);
    }
    let missing = rotate(&app, &app.admin_key, "key_nope", None).await;
    assert_error(missing, StatusCode::NOT_FOUND, "unknown key").await;
    let listed = app.list("limit=100").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        3,
        "a failed rotation stored a key"
    );
}

async fn rotation_accepts_no_body_an_empty_body_or_null(app: TestApp) {
    let mut id = app.create_named("spinning").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bodies: [(Option<&str>, &str); 3] = [
        (None, ""),
        (Some("application/json"), ""),
        (Some("application/json"), "null"),
    ];
    for (content_type, body) in bodies {
        let mut request = app
            .request(Method::POST, &format!("{PATH}/{id}/rotate"))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let (status, new) = read(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?} {body:?}: {new}");
        id = new["id"].as_str().unwrap().to_owned();
    }
}

async fn without_expires_in_seconds_the_new_key_keeps_the_old_lifetime_from_now(app: TestApp) {
    let month = 30 * 24 * 3600;
    let old = app
        .create_key(json!({ "name": "monthly", "expires_in_seconds": month }))
        .await;
    app.clock.advance(1000);
    let (status, new) =
        read(rotate(&app, &app.admin_key, old["id"].as_str().unwrap(), None).await).await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert_eq!(
        new["expires_at"],
        START + 1000 + month,
        "the old lifetime, from now"
    );

    let (_, newer) = read(
        rotate(
            &app,
            &app.admin_key,
            new["id"].as_str().unwrap(),
            Some(json!({ "expires_in_seconds": null })),
        )
        .await,
    )
    .await;
    assert_eq!(newer["expires_at"], Value::Null, "null asks for no expiry");

    let (_, newest) = read(
        rotate(
            &app,
            &app.admin_key,
            newer["id"].as_str().unwrap(),
            Some(json!({ "expires_in_seconds": 60 })),
        )
        .await,
    )
    .await;
    assert_eq!(newest["expires_at"], START + 1000 + 60);
    let (_, last) = read(
        rotate(
            &app,
            &app.admin_key,
            newest["id"].as_str().unwrap(),
            Some(json!({})),
        )
        .await,
    )
    .await;
    assert_eq!(
        last["expires_at"],
        START + 1000 + 60,
        "a 60-second key begets a 60-second key"
    );
}

async fn a_key_is_rotated_once_and_a_second_rotation_names_the_successor(app: TestApp) {
    let old = app.create_named("once").await;
    let old_id = old["id"].as_str().unwrap();
    let overlap = json!({ "previous_key_expires_in_seconds": 3600 });
    let (_, first) = read(rotate(&app, &app.admin_key, old_id, Some(overlap.clone())).await).await;
    let successor = first["id"].as_str().unwrap();

    let again = rotate(&app, &app.admin_key, old_id, Some(overlap.clone())).await;
    let error = assert_error(again, StatusCode::CONFLICT, "second rotation").await;
    assert_eq!(error["code"], "already_rotated");
    assert!(
        error["message"].as_str().unwrap().contains(successor),
        "{error}"
    );
    let (_, still) = read(app.get(&format!("{PATH}/{old_id}")).await).await;
    assert_eq!(
        still["expires_at"],
        START + 3600,
        "the first overlap is not cut short"
    );

    // Once the successor is gone, the old key (still in its overlap) may be rotated again.
    assert_eq!(
        app.delete(&format!("{PATH}/{successor}")).await.status(),
        StatusCode::OK
    );
    let (status, _) = read(rotate(&app, &app.admin_key, old_id, None).await).await;
    assert_eq!(status, StatusCode::OK);
}

async fn of_concurrent_rotations_of_one_key_exactly_one_succeeds(app: TestApp) {
    let old = app.create_named("contended").await;
    let old_id = old["id"].as_str().unwrap();
    let body = json!({ "previous_key_expires_in_seconds": 600 });
    let attempts = (0..4).map(|_| rotate(&app, &app.admin_key, old_id, Some(body.clone())));
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, conflicts), (1, 3), "{statuses:?}");
    let listed = app.list("limit=100&search=contended").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        2,
        "one successor: {listed}"
    );
}

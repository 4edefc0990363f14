use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    retrieve_returns_exactly_what_create_returned_without_value,
    retrieve_is_served_with_and_without_the_v1_prefix,
    retrieve_returns_404_for_unknown_key,
    delete_removes_the_key_and_confirms,
    delete_returns_404_for_unknown_or_already_deleted_key,
    deleted_key_stops_authenticating_at_once,
);

async fn retrieve_returns_exactly_what_create_returned_without_value(app: TestApp) {
    let mut created = app
        .create_key(serde_json::json!({ "name": "k", "expires_in_seconds": 90 }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    let response = app
        .get(&format!("/v1/organization/admin_api_keys/{id}"))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, retrieved) = read(response).await;

    assert_eq!(status, StatusCode::OK);
    created.as_object_mut().unwrap().remove("value");
    assert_eq!(retrieved, created);
}

async fn retrieve_is_served_with_and_without_the_v1_prefix(app: TestApp) {
    let id = app.admin_key_id.clone();

    let (s1, with) = read(
        app.get(&format!("/v1/organization/admin_api_keys/{id}"))
            .await,
    )
    .await;
    let (s2, without) = read(app.get(&format!("/organization/admin_api_keys/{id}")).await).await;

    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(with, without);
}

async fn retrieve_returns_404_for_unknown_key(app: TestApp) {
    for id in [
        "key_doesnotexist",
        "nope",
        "key_%00",
        "key_%E2%9C%93",
        &"k".repeat(500),
    ] {
        let response = app
            .get(&format!("/v1/organization/admin_api_keys/{id}"))
            .await;
        let error = assert_error(response, StatusCode::NOT_FOUND, id).await;
        assert_eq!(error["param"], "key_id");
    }
}

async fn delete_removes_the_key_and_confirms(app: TestApp) {
    let id = app.create_named("doomed").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, body) = read(
        app.delete(&format!("/v1/organization/admin_api_keys/{id}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "id": id, "object": "organization.admin_api_key.deleted", "deleted": true })
    );
    let response = app
        .get(&format!("/v1/organization/admin_api_keys/{id}"))
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "retrieve after delete").await;
    let listed: Vec<Value> = app.list("limit=100").await["data"]
        .as_array()
        .unwrap()
        .clone();
    assert!(listed.iter().all(|k| k["id"] != id.as_str()));
}

async fn delete_returns_404_for_unknown_or_already_deleted_key(app: TestApp) {
    let id = app.create_named("once").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organization/admin_api_keys/{id}");
    assert_eq!(app.delete(&path).await.status(), StatusCode::OK);

    assert_error(
        app.delete(&path).await,
        StatusCode::NOT_FOUND,
        "second delete",
    )
    .await;
    assert_error(
        app.delete("/organization/admin_api_keys/key_unknown").await,
        StatusCode::NOT_FOUND,
        "unknown id",
    )
    .await;
}

async fn deleted_key_stops_authenticating_at_once(app: TestApp) {
    let key = app.create_named("short-lived").await;
    let (id, value) = (key["id"].as_str().unwrap(), key["value"].as_str().unwrap());
    let own = format!("/v1/organization/admin_api_keys/{id}");
    let before = app
        .request_as(value, Method::GET, &own)
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::OK);

    assert_eq!(app.delete(&own).await.status(), StatusCode::OK);
    let after = app
        .request_as(value, Method::GET, "/v1/organization/admin_api_keys")
        .send()
        .await
        .unwrap();

    assert_eq!(after.headers()["www-authenticate"], "Bearer");
    let error = assert_error(after, StatusCode::UNAUTHORIZED, "deleted key").await;
    assert_eq!(error["code"], "invalid_api_key");
}

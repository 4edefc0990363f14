use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    unknown_routes_get_404_in_the_envelope,
    wrong_methods_get_405_in_the_envelope,
    malformed_and_mistyped_bodies_get_4xx_in_the_envelope,
    health_and_readiness_answer_json_without_auth,
);

const PATH: &str = "/v1/organization/admin_api_keys";

async fn unknown_routes_get_404_in_the_envelope(app: TestApp) {
    for path in [
        "/",
        "/v1",
        "/v2/organization/admin_api_keys",
        "/v1/organization/admin_api_keys/key_x/extra",
        "/v1/organization",
    ] {
        let response = app.get(path).await;
        let error = assert_error(response, StatusCode::NOT_FOUND, path).await;
        assert_eq!(error["code"], "not_found", "{path}");
    }
}

async fn wrong_methods_get_405_in_the_envelope(app: TestApp) {
    let cases = [
        (Method::PUT, PATH.to_owned()),
        (Method::DELETE, PATH.to_owned()),
        (Method::PATCH, format!("{PATH}/{}", app.admin_key_id)),
        (Method::PUT, "/organization/admin_api_keys".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::DELETE, "/readyz".to_owned()),
        (Method::PUT, "/openapi.json".to_owned()),
    ];
    for (method, path) in cases {
        let response = app.request(method.clone(), &path).send().await.unwrap();
        let error = assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path}"),
        )
        .await;
        assert_eq!(error["code"], "method_not_allowed");
    }
}

async fn malformed_and_mistyped_bodies_get_4xx_in_the_envelope(app: TestApp) {
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = app.request(Method::POST, PATH).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send()
    };
    let big_name = "n".repeat(70 * 1024);
    let cases: Vec<(Option<&'static str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            Some("application/json"),
            b"{\"name\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "truncated JSON",
        ),
        (
            Some("application/json"),
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            Some("application/json"),
            vec![0xff, 0xfe, 0x00],
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (
            Some("application/json"),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty body",
        ),
        (
            Some("application/json"),
            serde_json::to_vec(&json!({ "name": big_name })).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "70 KiB body",
        ),
    ];
    for (content_type, body, status, why) in cases {
        let response = send(content_type, body).await.unwrap();
        assert_error(response, status, why).await;
    }
    assert_eq!(
        app.list("limit=100").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn health_and_readiness_answer_json_without_auth(app: TestApp) {
    let (status, health) = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, health),
        (StatusCode::OK, json!({ "status": "ok" }))
    );

    let (status, ready) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, ready),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
}

/// Drops the database under a running server: readiness and the API must answer 503 in the
/// envelope, not hang or crash. (PostgreSQL only: it is the backend that can go away.)
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn postgres_outage_gets_503_in_the_envelope() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let server_url = std::env::var("TEST_DATABASE_URL").unwrap();
    actix_web::web::block(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::PgConnection::establish(&server_url).unwrap();
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .unwrap();
    })
    .await
    .unwrap();

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    let error = assert_error(ready, StatusCode::SERVICE_UNAVAILABLE, "readyz").await;
    assert_eq!(error["type"], "server_error");

    let api = app.get(PATH).await;
    assert_eq!(api.headers()["retry-after"], "1");
    let error = assert_error(api, StatusCode::SERVICE_UNAVAILABLE, "list").await;
    assert_eq!(error["code"], "service_unavailable");
}

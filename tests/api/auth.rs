use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_error, ids};

backend_tests!(
    requests_without_a_valid_bearer_key_get_401,
    every_api_route_requires_a_key_under_both_prefixes,
    an_expired_key_gets_401_from_its_expiry_second,
    the_bearer_scheme_is_case_insensitive,
    authentication_is_checked_before_the_request_is_validated,
);

async fn requests_without_a_valid_bearer_key_get_401(app: TestApp) {
    let valid = app.admin_key.clone();
    let forged_checksum = format!("{}000000", &valid[..valid.len() - 6]);
    // A well-formed key (right checksum) that was never issued.
    let never_issued = admin_api_keys::domain::secret::generate_key()
        .expose()
        .to_owned();
    let cases: Vec<(Option<String>, &str, &str)> = vec![
        (None, "missing_api_key", "no Authorization header"),
        (Some(String::new()), "invalid_api_key", "empty header"),
        (
            Some("Bearer".into()),
            "invalid_api_key",
            "scheme without token",
        ),
        (Some("Bearer ".into()), "invalid_api_key", "empty token"),
        (
            Some(format!("Basic {valid}")),
            "invalid_api_key",
            "wrong scheme",
        ),
        (
            Some(valid.clone()),
            "invalid_api_key",
            "token without scheme",
        ),
        (
            Some(format!(
                "Bearer {}",
                valid.replacen("sk-admin-", "sk-proj--", 1)
            )),
            "invalid_api_key",
            "wrong prefix",
        ),
        (
            Some(format!("Bearer {}", &valid[..valid.len() - 1])),
            "invalid_api_key",
            "too short",
        ),
        (
            Some(format!("Bearer {valid}x")),
            "invalid_api_key",
            "too long",
        ),
        (
            Some(format!("Bearer {}-{}", &valid[..20], &valid[21..])),
            "invalid_api_key",
            "bad alphabet",
        ),
        (
            Some(format!("Bearer {forged_checksum}")),
            "invalid_api_key",
            "bad checksum",
        ),
        (
            Some(format!("Bearer {never_issued}")),
            "invalid_api_key",
            "well-formed but unknown",
        ),
    ];
    for (header, code, why) in cases {
        let mut request = app.client.get(app.url("/v1/organization/admin_api_keys"));
        if let Some(value) = header {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{why}"
        );
        let error = assert_error(response, StatusCode::UNAUTHORIZED, why).await;
        assert_eq!(error["code"], code, "{why}");
        assert!(
            !error["message"].as_str().unwrap().contains(&valid[9..]),
            "{why}: echoed the key"
        );
    }
}

async fn every_api_route_requires_a_key_under_both_prefixes(app: TestApp) {
    let id = &app.admin_key_id;
    for prefix in ["/v1", ""] {
        let routes = [
            (Method::GET, format!("{prefix}/organization/admin_api_keys")),
            (
                Method::POST,
                format!("{prefix}/organization/admin_api_keys"),
            ),
            (
                Method::GET,
                format!("{prefix}/organization/admin_api_keys/{id}"),
            ),
            (
                Method::DELETE,
                format!("{prefix}/organization/admin_api_keys/{id}"),
            ),
        ];
        for (method, path) in routes {
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .json(&json!({ "name": "x" }))
                .send()
                .await
                .unwrap();
            assert_error(
                response,
                StatusCode::UNAUTHORIZED,
                &format!("{method} {path}"),
            )
            .await;
        }
    }
    // Nothing above was allowed to delete the key.
    assert_eq!(
        app.get(&format!("/v1/organization/admin_api_keys/{id}"))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn an_expired_key_gets_401_from_its_expiry_second(app: TestApp) {
    let key = app
        .create_key(json!({ "name": "temp", "expires_in_seconds": 60 }))
        .await;
    let value = key["value"].as_str().unwrap();
    let call = || {
        app.request_as(value, Method::GET, "/v1/organization/admin_api_keys")
            .send()
    };

    app.clock.advance(59);
    assert_eq!(
        call().await.unwrap().status(),
        StatusCode::OK,
        "one second before expiry"
    );

    app.clock.advance(1);
    let error = assert_error(call().await.unwrap(), StatusCode::UNAUTHORIZED, "at expiry").await;
    assert_eq!(error["code"], "api_key_expired");

    // Still listed, so an operator can see and delete it.
    let listed = ids(&app.list("limit=100").await);
    assert!(listed.contains(&key["id"].as_str().unwrap().to_owned()));
}

async fn the_bearer_scheme_is_case_insensitive(app: TestApp) {
    let response = app
        .client
        .get(app.url("/v1/organization/admin_api_keys"))
        .header("Authorization", format!("bearer {}", app.admin_key))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}

async fn authentication_is_checked_before_the_request_is_validated(app: TestApp) {
    // Well-formed but never issued: only the database can tell it is unknown.
    let stranger = admin_api_keys::domain::secret::generate_key()
        .expose()
        .to_owned();
    let base = "/v1/organization/admin_api_keys";
    let cases = [
        (
            app.request_as(&stranger, Method::POST, base)
                .json(&json!({ "nme": "x" })),
            "unknown body field",
        ),
        (
            app.request_as(&stranger, Method::POST, base)
                .header("Content-Type", "text/plain")
                .body("x"),
            "wrong content type",
        ),
        (
            app.request_as(&stranger, Method::GET, &format!("{base}?limit=0")),
            "bad limit",
        ),
        (
            app.request_as(&stranger, Method::GET, &format!("{base}?after=key_nope")),
            "unknown after",
        ),
        (
            app.request_as(&stranger, Method::GET, &format!("{base}/key_nope")),
            "unknown key id",
        ),
        (app.request_as(&stranger, Method::PUT, base), "wrong method"),
    ];
    for (request, why) in cases {
        let response = request.send().await.unwrap();
        let error = assert_error(response, StatusCode::UNAUTHORIZED, why).await;
        assert_eq!(error["code"], "invalid_api_key", "{why}");
    }
}

//! Ambiguous or mistyped requests are refused, never guessed; errors are in our words and
//! never repeat what the client sent.

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    bodies_that_are_missing_empty_or_not_json_get_400_whatever_the_content_type,
    valid_json_is_read_whatever_the_content_type,
    a_body_that_repeats_a_member_is_refused,
    mistyped_fields_are_named_in_our_words_without_echoing_the_value,
    unknown_fields_are_refused_and_named_only_when_the_name_is_plain,
    compressed_bodies_are_refused_with_415,
    several_authorization_headers_are_refused_even_if_one_is_valid,
    unknown_or_repeated_query_parameters_are_refused,
    filter_values_that_are_not_ours_are_refused,
    no_error_repeats_a_secret_sent_in_the_path_query_or_body,
    the_same_rule_reads_the_same_on_every_route,
    names_with_invisible_format_characters_are_refused,
);

const PATH: &str = "/v1/organization/admin_api_keys";

/// Phrases of serde or Rust that must never reach a client.
const FOREIGN_WORDING: [&str; 8] = [
    "invalid type",
    "expected",
    "deserialize",
    "serde",
    "i64",
    "unknown variant",
    "at line",
    "missing field",
];

fn assert_our_words(error: &Value, context: &str) {
    let message = error["message"].as_str().unwrap().to_lowercase();
    for phrase in FOREIGN_WORDING {
        assert!(
            !message.contains(phrase),
            "{context}: {phrase:?} in {error}"
        );
    }
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> reqwest::Response {
    let mut request = app.request(Method::POST, path).body(body.to_vec());
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.send().await.unwrap()
}

async fn bodies_that_are_missing_empty_or_not_json_get_400_whatever_the_content_type(app: TestApp) {
    let key_path = format!("{PATH}/{}", app.admin_key_id);
    let rotate_path = format!("{key_path}/rotate");
    let not_json: [&[u8]; 6] = [
        b"not json",
        b"{\"name\": ",
        b"\xff\xfe",
        b"[1]",
        b"\"k\"",
        b"name=k",
    ];
    for content_type in [
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        for body in not_json {
            for path in [PATH, key_path.as_str(), rotate_path.as_str()] {
                let context = format!(
                    "{path} {content_type:?} {:?}",
                    String::from_utf8_lossy(body)
                );
                let response = post_raw(&app, path, content_type, body).await;
                let error = assert_error(response, StatusCode::BAD_REQUEST, &context).await;
                assert_eq!(error["type"], "invalid_request_error", "{context}");
                assert_eq!(error["code"], "invalid_json", "{context}");
                assert_our_words(&error, &context);
            }
        }
        for body in [&b""[..], b"  \n", b"null"] {
            for path in [PATH, key_path.as_str()] {
                let context = format!("{path} {content_type:?} {body:?}");
                let response = post_raw(&app, path, content_type, body).await;
                let error = assert_error(response, StatusCode::BAD_REQUEST, &context).await;
                assert_eq!(error["type"], "invalid_request_error", "{context}");
            }
        }
    }
    let no_body = app.request(Method::POST, PATH).send().await.unwrap();
    assert_error(no_body, StatusCode::BAD_REQUEST, "no body at all").await;
    assert_eq!(app.list("").await["data"].as_array().unwrap().len(), 1);
}

async fn valid_json_is_read_whatever_the_content_type(app: TestApp) {
    for content_type in [Some("text/plain"), None] {
        let response = post_raw(&app, PATH, content_type, br#"{"name": "typed loosely"}"#).await;
        let (status, key) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?}: {key}");
    }
}

async fn a_body_that_repeats_a_member_is_refused(app: TestApp) {
    let key_path = format!("{PATH}/{}", app.admin_key_id);
    let cases = [
        (PATH, r#"{"name": "a", "name": "b"}"#, "name"),
        (
            PATH,
            r#"{"name": "a", "scopes": [], "scopes": ["audit_logs.read"]}"#,
            "scopes",
        ),
        (
            key_path.as_str(),
            r#"{"enabled": false, "enabled": true}"#,
            "enabled",
        ),
        (
            key_path.as_str(),
            r#"{"name": "a", "na\u006de": "b"}"#,
            "name",
        ),
    ];
    for (path, body, param) in cases {
        let response = post_raw(&app, path, Some("application/json"), body.as_bytes()).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, body).await;
        assert_eq!(error["param"], param, "{body}");
    }
    let (_, key) = read(app.get(&key_path).await).await;
    assert_eq!(
        key["enabled"], true,
        "no copy of a repeated member was applied"
    );
}

async fn mistyped_fields_are_named_in_our_words_without_echoing_the_value(app: TestApp) {
    let cases = [
        (
            json!({ "name": "k", "expires_in_seconds": "4321" }),
            "expires_in_seconds",
            "4321",
        ),
        (
            json!({ "name": "k", "expires_in_seconds": 4321.5 }),
            "expires_in_seconds",
            "4321",
        ),
        (json!({ "name": 12345 }), "name", "12345"),
        (
            json!({ "name": "k", "scopes": ["admin_api_keys.reed"] }),
            "scopes[0]",
            "reed",
        ),
        (
            json!({ "name": "k", "scopes": "audit_logs.read" }),
            "scopes",
            "audit_logs.read\"",
        ),
    ];
    for (body, param, sent) in cases {
        let response = app.post_json(PATH, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param, "{body}");
        let message = error["message"].as_str().unwrap();
        assert!(
            !message.contains(sent),
            "{body}: the value came back in {message:?}"
        );
        assert_our_words(&error, &body.to_string());
    }
    let null_scopes = app
        .post_json(PATH, &json!({ "name": "k", "scopes": null }))
        .await;
    let error = assert_error(null_scopes, StatusCode::BAD_REQUEST, "scopes: null").await;
    assert_eq!(
        error["param"], "scopes",
        "null is not a way to ask for the default"
    );
    let update = app
        .post_json(
            &format!("{PATH}/{}", app.admin_key_id),
            &json!({ "enabled": "false" }),
        )
        .await;
    let error = assert_error(update, StatusCode::BAD_REQUEST, "enabled as a string").await;
    assert_eq!(error["param"], "enabled");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`true` or `false`")
    );
}

async fn unknown_fields_are_refused_and_named_only_when_the_name_is_plain(app: TestApp) {
    let secret = app.admin_key.clone();
    let plain = app
        .post_json(PATH, &json!({ "name": "k", "scope": [] }))
        .await;
    let error = assert_error(plain, StatusCode::BAD_REQUEST, "scope for scopes").await;
    assert_eq!(error["param"], "scope");
    assert!(
        error["message"].as_str().unwrap().contains("`scopes`"),
        "{error}"
    );

    let pasted = app
        .post_json(PATH, &json!({ "name": "k", secret.as_str(): 1 }))
        .await;
    let error = assert_error(pasted, StatusCode::BAD_REQUEST, "a secret as a field name").await;
    assert_eq!(error["param"], json!(null));
    assert!(!error.to_string().contains(&secret), "{error}");
}

async fn compressed_bodies_are_refused_with_415(app: TestApp) {
    for encoding in ["gzip", "br", "zstd", "deflate", "gzip, identity"] {
        let response = app
            .request(Method::POST, PATH)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, encoding)
            .body(vec![0x1f, 0x8b, 0x08, 0x00])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["accept-encoding"], "identity");
        let error = assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, encoding).await;
        assert_eq!(error["code"], "unsupported_content_encoding");
    }
    let identity = app
        .request(Method::POST, PATH)
        .header(CONTENT_ENCODING, "identity")
        .json(&json!({ "name": "plain" }))
        .send()
        .await
        .unwrap();
    assert_eq!(identity.status(), StatusCode::OK);
}

async fn several_authorization_headers_are_refused_even_if_one_is_valid(app: TestApp) {
    let valid = format!("Bearer {}", app.admin_key);
    for other in [valid.as_str(), "Bearer sk-admin-nope", "Basic dXNlcjpwYXNz"] {
        let response = app
            .client
            .get(app.url(PATH))
            .header(AUTHORIZATION, valid.as_str())
            .header(AUTHORIZATION, other)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::BAD_REQUEST, other).await;
        assert_eq!(error["code"], "multiple_authorization_headers");
    }
}

async fn unknown_or_repeated_query_parameters_are_refused(app: TestApp) {
    let key = format!("{PATH}/{}", app.admin_key_id);
    let cases = [
        (format!("{PATH}?statuss=active"), Some("statuss")),
        (
            format!("{PATH}?status=active&status=disabled"),
            Some("status"),
        ),
        (format!("{PATH}?status=&status=active"), Some("status")),
        (format!("{PATH}?limit=5&limit=5"), Some("limit")),
        (format!("{PATH}?search=a&search=b"), Some("search")),
        (
            "/v1/organization/audit_logs?event_type=api_key.created".to_owned(),
            Some("event_type"),
        ),
        (
            "/v1/organization/audit_logs?order=asc".to_owned(),
            Some("order"),
        ),
        (format!("{key}?expand=owner"), Some("expand")),
        (format!("{key}?x%2Dy=1"), None),
    ];
    for (path, param) in cases {
        let response = app.get(&path).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &path).await;
        assert_eq!(error["param"], json!(param), "{path}");
    }
    for method in [Method::DELETE, Method::POST] {
        let response = app
            .request(method.clone(), &format!("{key}?force=true"))
            .json(&json!({ "name": "x" }))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::BAD_REQUEST, method.as_str()).await;
        assert_eq!(error["param"], "force");
    }
    let (status, _) = read(app.get(&key).await).await;
    assert_eq!(status, StatusCode::OK, "the key was not deleted");
}

async fn filter_values_that_are_not_ours_are_refused(app: TestApp) {
    let cases = [
        ("event_types[]=api_key.delete", "event_types[]"),
        (
            "event_types[]=api_key.created&event_types[]=nope",
            "event_types[]",
        ),
        ("actor_ids[]=alice", "actor_ids[]"),
        ("resource_ids[]=key_short", "resource_ids[]"),
    ];
    for (query, param) in cases {
        let path = format!("/v1/organization/audit_logs?{query}");
        let error = assert_error(app.get(&path).await, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
    let status = assert_error(
        app.get(&format!("{PATH}?status=revoked")).await,
        StatusCode::BAD_REQUEST,
        "status=revoked",
    )
    .await;
    assert_eq!(status["param"], "status");
}

async fn no_error_repeats_a_secret_sent_in_the_path_query_or_body(app: TestApp) {
    let other = app.create_named("pasted").await;
    let secret = other["value"].as_str().unwrap().to_owned();
    let encoded = secret.replace('-', "%2D");
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("{PATH}/{secret}"), None),
        (Method::GET, format!("{PATH}/{encoded}"), None),
        (Method::DELETE, format!("{PATH}/{secret}"), None),
        (
            Method::POST,
            format!("{PATH}/{secret}"),
            Some(json!({ "enabled": false })),
        ),
        (Method::POST, format!("{PATH}/{secret}/rotate"), None),
        (Method::GET, format!("{PATH}/{secret}/extra"), None),
        (Method::GET, format!("/v1/{secret}"), None),
        (Method::GET, format!("{PATH}?after={secret}"), None),
        (Method::GET, format!("{PATH}?limit={secret}"), None),
        (Method::GET, format!("{PATH}?status={secret}"), None),
        (Method::GET, format!("{PATH}?{secret}=1"), None),
        (Method::GET, format!("{PATH}?order={secret}"), None),
        (
            Method::GET,
            format!("/v1/organization/audit_logs?after={secret}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/organization/audit_logs?before={secret}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/organization/audit_logs?actor_ids[]={secret}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/organization/audit_logs?effective_at[gt]={secret}"),
            None,
        ),
        (
            Method::POST,
            PATH.to_owned(),
            Some(json!({ "name": "k", "expires_in_seconds": secret })),
        ),
        (
            Method::POST,
            PATH.to_owned(),
            Some(json!({ "name": "k", "scopes": [secret] })),
        ),
        (
            Method::POST,
            PATH.to_owned(),
            Some(json!({ "name": ["k", secret] })),
        ),
        (Method::PUT, format!("{PATH}/{secret}"), None),
    ];
    for (method, path, body) in requests {
        let mut request = app.request(method.clone(), &path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_client_error(), "{method} {path}: {status}");
        let context = format!("{method} {path} {body:?}");
        assert!(
            !text.contains(&secret),
            "{context}: the secret came back: {text}"
        );
        assert!(
            !text.contains(&secret[9..]),
            "{context}: part of it came back: {text}"
        );
        assert!(!text.contains(&encoded), "{context}: {text}");
    }
    let id = other["id"].as_str().unwrap();
    let missing = format!(
        "{}{}",
        &id[..id.len() - 1],
        if id.ends_with('A') { 'B' } else { 'A' }
    );
    let error = assert_error(
        app.get(&format!("{PATH}/{missing}")).await,
        StatusCode::NOT_FOUND,
        "an id of our shape",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains(&missing),
        "ids of our shape are named: {error}"
    );
}

async fn the_same_rule_reads_the_same_on_every_route(app: TestApp) {
    for limit in ["0", "101", "ten", "-1"] {
        let keys = assert_error(
            app.get(&format!("{PATH}?limit={limit}")).await,
            StatusCode::BAD_REQUEST,
            limit,
        )
        .await;
        let audit = assert_error(
            app.get(&format!("/v1/organization/audit_logs?limit={limit}"))
                .await,
            StatusCode::BAD_REQUEST,
            limit,
        )
        .await;
        assert_eq!(keys, audit, "limit={limit}");
        assert_our_words(&keys, limit);
    }
    let create = assert_error(
        app.post_json(PATH, &json!({ "name": "" })).await,
        StatusCode::BAD_REQUEST,
        "create",
    )
    .await;
    let update = assert_error(
        app.post_json(
            &format!("{PATH}/{}", app.admin_key_id),
            &json!({ "name": "" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "update",
    )
    .await;
    assert_eq!(
        create, update,
        "an empty name reads the same on create and update"
    );
}

async fn names_with_invisible_format_characters_are_refused(app: TestApp) {
    for name in [
        "ci\u{202E}gpj.exe",
        "ad\u{200B}min",
        "\u{2066}deploy\u{2069}",
        "x\u{FEFF}y",
    ] {
        let created = app.post_json(PATH, &json!({ "name": name })).await;
        let error = assert_error(created, StatusCode::BAD_REQUEST, name).await;
        assert_eq!(error["param"], "name");
        let renamed = app
            .post_json(
                &format!("{PATH}/{}", app.admin_key_id),
                &json!({ "name": name }),
            )
            .await;
        assert_error(renamed, StatusCode::BAD_REQUEST, name).await;
    }
    let fine = app
        .post_json(PATH, &json!({ "name": "Déploiement · 🚀" }))
        .await;
    assert_eq!(fine.status(), StatusCode::OK);
}

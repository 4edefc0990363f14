//! `/forward-auth`: what a reverse proxy asks before passing a request upstream. 200 with the
//! key's identity in headers, 401 with this service's own codes, 403 for a missing
//! permission; every method; no database statement once the key is cached.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_error};

backend_tests!(
    a_good_key_passes_with_its_identity_in_headers,
    the_key_header_is_read_when_there_is_no_bearer_token,
    every_unusable_key_is_a_401_with_the_apis_own_code,
    every_required_permission_must_be_covered,
    every_method_is_accepted_and_no_body_is_read,
    the_path_form_ignores_the_original_path_and_query,
    invalid_requirements_are_400s_that_repeat_nothing,
    changes_through_the_api_apply_to_the_next_check,
    a_cached_key_costs_no_database_statement_and_counts_as_a_use,
);

const FORWARD: &str = "/v1/forward-auth";
const KEYS: &str = "/v1/organization/admin_api_keys";

/// A forward-auth check of `path` carrying `key` as bearer token.
async fn check(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.request_as(key, Method::GET, path).send().await.unwrap()
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is set"))
        .to_str()
        .unwrap()
}

/// A key with `permissions` made by the bootstrap key: (id, secret).
async fn key_with(app: &TestApp, permissions: &[&str]) -> (String, String) {
    let made = app
        .create_key(json!({
            "name": "service caller",
            "scopes": ["admin_api_keys.read"],
            "permissions": permissions,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    )
}

async fn a_good_key_passes_with_its_identity_in_headers(app: TestApp) {
    let (id, value) = key_with(&app, &["reports:read", "billing:*"]).await;
    let response = check(&app, &value, FORWARD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-api-key-id"), id);
    assert_eq!(header(&response, "x-api-key-owner-id"), app.owner_id);
    assert_eq!(header(&response, "x-api-key-scopes"), "admin_api_keys.read");
    assert_eq!(
        header(&response, "x-api-key-permissions"),
        "billing:* reports:read"
    );
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(response.bytes().await.unwrap().is_empty(), "no body");

    // Unprefixed too; a key without permissions passes a location that requires none.
    let (_, plain) = key_with(&app, &[]).await;
    let response = check(&app, &plain, "/forward-auth").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-api-key-permissions"), "");
}

async fn the_key_header_is_read_when_there_is_no_bearer_token(app: TestApp) {
    let (id, value) = key_with(&app, &[]).await;
    let (_, other) = key_with(&app, &[]).await;
    let plain = |name: &'static str, value: String| {
        app.client.get(app.url(FORWARD)).header(name, value).send()
    };
    let response = plain("X-Api-Key", value.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-api-key-id"), id);

    // `Authorization` of another scheme belongs to the upstream: the key header counts.
    let response = app
        .client
        .get(app.url(FORWARD))
        .basic_auth("someone", Some("their password"))
        .header("x-api-key", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The same key twice is one key; two different keys are refused, whichever is right.
    let same = app
        .request_as(&value, Method::GET, FORWARD)
        .header("x-api-key", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    for (bearer, in_header) in [(&value, &other), (&other, &app.admin_key)] {
        let two = app
            .request_as(bearer, Method::GET, FORWARD)
            .header("x-api-key", in_header)
            .send()
            .await
            .unwrap();
        let error = assert_error(two, StatusCode::UNAUTHORIZED, "two keys").await;
        assert_eq!(error["code"], "multiple_api_keys");
    }
    let twice = app
        .client
        .get(app.url(FORWARD))
        .header("x-api-key", &value)
        .header("x-api-key", &value)
        .send()
        .await
        .unwrap();
    assert_error(twice, StatusCode::UNAUTHORIZED, "the key header twice").await;

    // Basic credentials and no key header: no key at all.
    let response = app
        .client
        .get(app.url(FORWARD))
        .basic_auth("someone", Some("their password"))
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::UNAUTHORIZED, "basic only").await;
    assert_eq!(error["code"], "invalid_api_key");
}

async fn every_unusable_key_is_a_401_with_the_apis_own_code(app: TestApp) {
    let refused = |response: reqwest::Response, code: &'static str| async move {
        assert_eq!(
            header(&response, "www-authenticate"),
            "Bearer",
            "a 401 names its scheme"
        );
        let error = assert_error(response, StatusCode::UNAUTHORIZED, code).await;
        assert_eq!(error["code"], code);
    };
    refused(
        app.client.get(app.url(FORWARD)).send().await.unwrap(),
        "missing_api_key",
    )
    .await;
    refused(
        check(&app, "sk-admin-nonsense", FORWARD).await,
        "invalid_api_key",
    )
    .await;

    let (id, value) = key_with(&app, &[]).await;
    let off = app
        .post_json(&format!("{KEYS}/{id}"), &json!({ "enabled": false }))
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    refused(check(&app, &value, FORWARD).await, "api_key_disabled").await;
    assert_eq!(
        app.delete(&format!("{KEYS}/{id}")).await.status(),
        StatusCode::OK
    );
    refused(check(&app, &value, FORWARD).await, "invalid_api_key").await;

    let member = app.add_member("owner").await;
    let (_, theirs) = app.key_for(&member, Some(&["admin_api_keys.read"])).await;
    assert_eq!(check(&app, &theirs, FORWARD).await.status(), StatusCode::OK);
    let off = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "enabled": false }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    refused(check(&app, &theirs, FORWARD).await, "user_disabled").await;

    let short = app
        .create_key(json!({ "name": "short", "expires_in_seconds": 10 }))
        .await;
    let short = short["value"].as_str().unwrap();
    assert_eq!(check(&app, short, FORWARD).await.status(), StatusCode::OK);
    app.clock.advance(10);
    refused(check(&app, short, FORWARD).await, "api_key_expired").await;
}

async fn every_required_permission_must_be_covered(app: TestApp) {
    let (_, value) = key_with(&app, &["billing:*", "reports:read"]).await;
    let status = |query: &'static str, required: Option<&'static str>| {
        let mut request = app.request_as(&value, Method::GET, &format!("{FORWARD}{query}"));
        if let Some(required) = required {
            request = request.header("x-required-permission", required);
        }
        async move { request.send().await.unwrap() }
    };
    for (query, required) in [
        ("?permission=billing:read", None),
        ("?permission=billing:invoices/write", None),
        ("?permission=billing:read&permission=reports:read", None),
        ("?permission[]=reports:read", None),
        ("?permission=billing:*", None),
        ("", Some("billing:read, reports:read")),
        ("?permission=billing:read", Some("reports:read")),
    ] {
        let response = status(query, required).await;
        assert_eq!(response.status(), StatusCode::OK, "{query} {required:?}");
    }
    for (query, required) in [
        ("?permission=admin", None),
        ("?permission=billing:read&permission=reports:write", None),
        ("?permission=reports:*", None),
        ("?permission=*", None),
        ("?permission=billing", None),
        ("", Some("billing:read,reports:write")),
        // A requirement a client slips into the header only makes the check stricter.
        ("?permission=billing:read", Some("admin")),
    ] {
        let response = status(query, required).await;
        let error = assert_error(response, StatusCode::FORBIDDEN, query).await;
        assert_eq!(error["code"], "missing_permission");
        assert!(
            !error["message"].as_str().unwrap().contains("write"),
            "names no permission: {error}"
        );
    }

    // `*` covers everything; no permissions cover nothing.
    let (_, all) = key_with(&app, &["*"]).await;
    let response = check(&app, &all, &format!("{FORWARD}?permission=anything:at/all")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, none) = key_with(&app, &[]).await;
    let response = check(&app, &none, &format!("{FORWARD}?permission=reports:read")).await;
    assert_error(response, StatusCode::FORBIDDEN, "no permissions").await;
}

async fn every_method_is_accepted_and_no_body_is_read(app: TestApp) {
    let (id, value) = key_with(&app, &[]).await;
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let response = app
            .request_as(&value, method.clone(), FORWARD)
            .header("content-type", "application/json")
            .body("{ this is not json and is never read")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(header(&response, "x-api-key-id"), id, "{method}");
    }
    let response = app.client.head(app.url(FORWARD)).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "HEAD without a key"
    );
}

async fn the_path_form_ignores_the_original_path_and_query(app: TestApp) {
    let (id, value) = key_with(&app, &["billing:read"]).await;
    for path in [
        "/v1/forward-auth/",
        "/v1/forward-auth/billing/invoices?page=2&sort=desc",
        "/forward-auth/anything/at/all?x=1",
        // A requirement in the query still counts: a stray `/` cannot turn it off.
        "/v1/forward-auth/?permission=billing:read",
    ] {
        let response = check(&app, &value, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "x-api-key-id"), id);
    }
    for path in [
        "/v1/forward-auth/?permission=billing:write",
        "/v1/forward-auth/billing/invoices?page=2&permission=admin",
    ] {
        let response = check(&app, &value, path).await;
        assert_error(response, StatusCode::FORBIDDEN, path).await;
    }
    let required = |permission: &'static str| {
        app.request_as(&value, Method::POST, "/v1/forward-auth/billing/invoices")
            .header("x-required-permission", permission)
            .send()
    };
    assert_eq!(
        required("billing:read").await.unwrap().status(),
        StatusCode::OK
    );
    let response = required("billing:write").await.unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "the header still counts").await;
}

async fn invalid_requirements_are_400s_that_repeat_nothing(app: TestApp) {
    let (_, value) = key_with(&app, &["*"]).await;
    let secretish = "sk-admin-oops";
    for (query, required) in [
        (format!("?permission={secretish}%20x"), None),
        (format!("?permission={}", "a".repeat(129)), None),
        (
            "?permission=billing:read".to_owned(),
            Some(format!("{secretish} x")),
        ),
        (format!("?{secretish}=1"), None),
        ("?permissions=billing:read".to_owned(), None),
        // An empty requirement is a template that came out empty, not "none required".
        ("?permission=".to_owned(), None),
        ("?permission=billing:read&permission=".to_owned(), None),
        ("/?permission=".to_owned(), None),
        (String::new(), Some(",".to_owned())),
        (String::new(), Some(String::new())),
    ] {
        let mut request = app.request_as(&value, Method::GET, &format!("{FORWARD}{query}"));
        if let Some(required) = &required {
            request = request.header("x-required-permission", required);
        }
        let error = assert_error(
            request.send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            &query,
        )
        .await;
        assert!(
            !error.to_string().contains(secretish),
            "nothing repeated: {error}"
        );
    }
    let too_many = (0..65)
        .map(|n| format!("permission=p{n}"))
        .collect::<Vec<_>>()
        .join("&");
    let response = check(&app, &value, &format!("{FORWARD}?{too_many}")).await;
    assert_error(response, StatusCode::BAD_REQUEST, "65 permissions").await;

    // The key is checked first: without one, a bad requirement is still a 401.
    let response = app
        .client
        .get(app.url(&format!("{FORWARD}?permission=%20")))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "no key").await;
}

async fn changes_through_the_api_apply_to_the_next_check(app: TestApp) {
    let member = app.add_member("owner").await;
    let made = app
        .create_key(json!({
            "name": "for a member",
            "owner_id": member,
            "scopes": ["admin_api_keys.read", "admin_api_keys.write"],
            "permissions": ["billing:read", "reports:read"],
        }))
        .await;
    let (id, value) = (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
    );
    let billing = format!("{FORWARD}?permission=billing:read");
    assert_eq!(check(&app, &value, &billing).await.status(), StatusCode::OK);

    // Revoke one permission: that location refuses at once, the other still lets it in.
    let update = app
        .post_json(
            &format!("{KEYS}/{id}"),
            &json!({ "permissions": ["reports:read"] }),
        )
        .await;
    assert_eq!(update.status(), StatusCode::OK);
    let response = check(&app, &value, &billing).await;
    assert_error(response, StatusCode::FORBIDDEN, "revoked").await;
    let reports = format!("{FORWARD}?permission=reports:read");
    assert_eq!(check(&app, &value, &reports).await.status(), StatusCode::OK);

    // Demote the owner: the effective scopes shrink in the very next answer, and so do the
    // permissions, to the reader's ceiling.
    let response = check(&app, &value, &reports).await;
    assert_eq!(
        header(&response, "x-api-key-scopes"),
        "admin_api_keys.read admin_api_keys.write"
    );
    let demote = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "role": "reader" }),
        )
        .await;
    assert_eq!(demote.status(), StatusCode::OK);
    let response = check(&app, &value, &reports).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no ceiling: none");
    let ceiling = app
        .post_json(
            &format!("/v1/organization/users/{member}"),
            &json!({ "permissions": ["reports:*", "billing:read"] }),
        )
        .await;
    assert_eq!(ceiling.status(), StatusCode::OK);
    let response = check(&app, &value, &reports).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-api-key-scopes"), "admin_api_keys.read");
    assert_eq!(header(&response, "x-api-key-permissions"), "reports:read");

    // Grant it back, within the reader's ceiling: passes again.
    let update = app
        .post_json(
            &format!("{KEYS}/{id}"),
            &json!({ "permissions": ["billing:read"] }),
        )
        .await;
    assert_eq!(update.status(), StatusCode::OK);
    assert_eq!(check(&app, &value, &billing).await.status(), StatusCode::OK);
}

async fn a_cached_key_costs_no_database_statement_and_counts_as_a_use(app: TestApp) {
    let (id, value) = key_with(&app, &["billing:*"]).await;
    let unknown = {
        let gone = app.create_named("gone").await;
        let gone_id = gone["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("{KEYS}/{gone_id}")).await.status(),
            StatusCode::OK
        );
        gone["value"].as_str().unwrap().to_owned()
    };
    let required = format!("{FORWARD}?permission=billing:read");
    // Fill the caches.
    assert_eq!(
        check(&app, &value, &required).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        check(&app, &unknown, FORWARD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let before = app.queries();
    for _ in 0..5 {
        assert_eq!(
            check(&app, &value, &required).await.status(),
            StatusCode::OK
        );
        let response = check(&app, &unknown, FORWARD).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.queries(), before, "no statement once cached");

    app.clock.advance(5);
    assert_eq!(
        check(&app, &value, &required).await.status(),
        StatusCode::OK
    );
    app.flush_usage().await;
    let (_, shown) = crate::helpers::read(app.get(&format!("{KEYS}/{id}")).await).await;
    assert_eq!(
        shown["last_used_at"],
        json!(admin_api_keys::clock::Clock::now(&app.clock)),
        "a check is a use"
    );
}

mod custom_header {
    use actix_web::http::header::HeaderName;
    use admin_api_keys::config::Settings;
    use reqwest::StatusCode;

    use super::{FORWARD, key_with};
    use crate::helpers::{TestApp, assert_error};

    backend_tests!(settings = read_x_auth_token; the_configured_key_header_replaces_x_api_key);

    fn read_x_auth_token(settings: &mut Settings) {
        settings.forward_auth_key_header = Some(HeaderName::from_static("x-auth-token"));
    }

    async fn the_configured_key_header_replaces_x_api_key(app: TestApp) {
        let (_, value) = key_with(&app, &[]).await;
        let with =
            |name: &'static str| app.client.get(app.url(FORWARD)).header(name, &value).send();
        assert_eq!(with("x-auth-token").await.unwrap().status(), StatusCode::OK);
        let error = assert_error(
            with("x-api-key").await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "the default header is not read",
        )
        .await;
        assert_eq!(error["code"], "missing_api_key");
    }
}

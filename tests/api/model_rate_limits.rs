//! Per-model rate limits of project keys at forward auth: the project's
//! `max_requests_per_1_minute` / `max_requests_per_1_day` for the model a request names
//! (`?model=`, `X-Model`, or a forwarded JSON body), OpenAI's `x-ratelimit-*-requests`
//! headers, 429 `rate_limit_exceeded` with `Retry-After`, and no database round trip once a
//! project's limits for a model are known.

use std::time::Duration;

use admin_api_keys::config::Settings;
use admin_api_keys::domain::rate_limits::RateLimitModels;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, read};
use crate::project_keys::{FORWARD, PROJECTS, forward, member_key, member_of, project, value};

backend_tests!(settings = with_models;
    a_projects_minute_limit_refuses_the_next_request_with_openais_headers,
    each_project_and_model_has_its_own_budget,
    lowering_a_limit_applies_to_the_next_request,
    the_model_comes_from_the_header_or_the_forwarded_body,
    model_sources_that_disagree_or_cannot_be_read_are_refused,
    a_model_first_seen_at_forward_auth_gets_a_limit_in_every_project,
    admin_keys_and_requests_naming_no_model_are_not_limited_per_model,
    a_cached_rate_limited_check_makes_no_database_statement,
);

const MODELS: &str = "gpt-4o rpm=2; o1 rpm=100 rpd=3; * rpm=1000";

fn with_models(settings: &mut Settings) {
    settings.rate_limit_models = RateLimitModels::parse(MODELS).unwrap();
}

/// A project with a member's key: (project id, key value).
async fn project_key(app: &TestApp) -> (String, String) {
    let project = project(app).await;
    let user = member_of(app, &project).await;
    let key = member_key(app, &project, &user, &[]).await;
    (project, value(&key).to_owned())
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

async fn a_projects_minute_limit_refuses_the_next_request_with_openais_headers(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let path = format!("{FORWARD}?model=gpt-4o");

    let first = forward(&app, &key, &path).await;
    let second = forward(&app, &key, &path).await;
    let third = forward(&app, &key, &path).await;

    assert_eq!((first.0, second.0), (200, 200));
    assert_eq!(header(&first.2, "x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(
        header(&first.2, "x-ratelimit-remaining-requests"),
        Some("1")
    );
    assert_eq!(
        header(&second.2, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert!(
        header(&second.2, "x-ratelimit-reset-requests")
            .unwrap()
            .ends_with('s')
    );
    assert_eq!(third.0, 429);
    assert_eq!(third.1, "rate_limit_exceeded");
    let retry: u64 = header(&third.2, "retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "half a minute at most: {retry}");
    assert_eq!(header(&third.2, "x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(
        header(&third.2, "x-ratelimit-remaining-requests"),
        Some("0")
    );
}

async fn each_project_and_model_has_its_own_budget(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let (_, other_project_key) = project_key(&app).await;
    let gpt = format!("{FORWARD}?model=gpt-4o");
    for _ in 0..2 {
        assert_eq!(forward(&app, &key, &gpt).await.0, 200);
    }
    assert_eq!(forward(&app, &key, &gpt).await.0, 429);

    let o1 = forward(&app, &key, &format!("{FORWARD}?model=o1")).await;
    let elsewhere = forward(&app, &other_project_key, &gpt).await;

    assert_eq!(o1.0, 200, "another model of the same project");
    assert_eq!(elsewhere.0, 200, "the same model in another project");
    // o1's tightest budget is its day (3), not its minute (100).
    assert_eq!(header(&o1.2, "x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(header(&o1.2, "x-ratelimit-remaining-requests"), Some("2"));
}

async fn lowering_a_limit_applies_to_the_next_request(app: TestApp) {
    let (project, key) = project_key(&app).await;
    let path = format!("{FORWARD}?model=llama3");
    assert_eq!(forward(&app, &key, &path).await.0, 200, "1000 a minute");

    let update = format!("{PROJECTS}/{project}/rate_limits/rl-llama3");
    let (status, body) = read(
        app.post_json(&update, &json!({ "max_requests_per_1_minute": 1 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let after = forward(&app, &key, &path).await;
    assert_eq!(
        after.0, 429,
        "the request already made spent the new limit of 1"
    );
    assert_eq!(header(&after.2, "x-ratelimit-limit-requests"), Some("1"));
}

async fn the_model_comes_from_the_header_or_the_forwarded_body(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let by_header = || {
        app.request_as(&key, Method::GET, FORWARD)
            .header("X-Model", "gpt-4o")
            .send()
    };
    let by_body = || {
        app.request_as(&key, Method::POST, FORWARD)
            .json(&json!({ "messages": [{ "role": "user", "content": "hi" }], "model": "gpt-4o" }))
            .send()
    };

    assert_eq!(by_header().await.unwrap().status(), 200);
    assert_eq!(by_body().await.unwrap().status(), 200);
    let refused = by_body().await.unwrap();

    assert_eq!(
        refused.status(),
        429,
        "header and body count against one budget"
    );
    assert_eq!(by_header().await.unwrap().status(), 429);
}

async fn model_sources_that_disagree_or_cannot_be_read_are_refused(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let disagree = app
        .request_as(&key, Method::POST, &format!("{FORWARD}?model=gpt-4o"))
        .json(&json!({ "model": "o1" }))
        .send()
        .await
        .unwrap();
    let twice = app
        .request_as(&key, Method::POST, FORWARD)
        .header("content-type", "application/json")
        .body(r#"{"model":"o1","messages":[],"model":"gpt-4o"}"#)
        .send()
        .await
        .unwrap();
    let header_and_query = app
        .request_as(&key, Method::GET, &format!("{FORWARD}?model=gpt-4o"))
        .header("X-Model", "o1")
        .send()
        .await
        .unwrap();
    let huge = app
        .request_as(&key, Method::POST, FORWARD)
        .json(&json!({ "model": "o1", "input": "x".repeat(300 * 1024) }))
        .send()
        .await
        .unwrap();
    let bad_name = forward(&app, &key, &format!("{FORWARD}?model=gpt%204o")).await;
    let empty = forward(&app, &key, &format!("{FORWARD}?model=")).await;

    for (response, code, why) in [
        (disagree, "ambiguous_model", "query and body disagree"),
        (twice, "ambiguous_model", "the body names two models"),
        (
            header_and_query,
            "ambiguous_model",
            "query and header disagree",
        ),
        (huge, "model_unreadable", "too large to vouch for"),
    ] {
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["error"]["code"], code, "{why}");
    }
    assert_eq!(
        (bad_name.0, bad_name.1.as_str()),
        (400, Some("invalid_model"))
    );
    assert_eq!(
        empty.0, 400,
        "an empty templated model is refused, not skipped"
    );
}

async fn a_model_first_seen_at_forward_auth_gets_a_limit_in_every_project(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let other = project(&app).await;

    let seen = forward(&app, &key, &format!("{FORWARD}?model=mistral-7b")).await;

    assert_eq!(seen.0, 200);
    assert_eq!(
        header(&seen.2, "x-ratelimit-limit-requests"),
        Some("1000"),
        "`*`"
    );
    let (status, page) = read(app.get(&format!("{PROJECTS}/{other}/rate_limits")).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let models: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["model"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"mistral-7b"), "{models:?}");
}

async fn admin_keys_and_requests_naming_no_model_are_not_limited_per_model(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let admin = app.admin_key.clone();
    for _ in 0..5 {
        let unnamed = forward(&app, &key, FORWARD).await;
        let admin_check = forward(&app, &admin, &format!("{FORWARD}?model=gpt-4o")).await;
        assert_eq!((unnamed.0, admin_check.0), (200, 200));
        assert!(header(&unnamed.2, "x-ratelimit-limit-requests").is_none());
        assert!(header(&admin_check.2, "x-ratelimit-limit-requests").is_none());
    }
}

async fn a_cached_rate_limited_check_makes_no_database_statement(app: TestApp) {
    let (_, key) = project_key(&app).await;
    let path = format!("{FORWARD}?model=llama3");
    // Every notification of the setup applied first (a late one would empty the caches in
    // the middle of the count below); then the first checks fill the caches.
    app.settle().await;
    let mut cached = false;
    for _ in 0..20 {
        let before = app.queries();
        assert_eq!(forward(&app, &key, &path).await.0, 200);
        if app.queries() == before {
            cached = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cached, "the check was never served from memory");

    let before = app.queries();
    for _ in 0..20 {
        assert_eq!(forward(&app, &key, &path).await.0, 200);
    }

    assert_eq!(
        app.queries() - before,
        0,
        "a cached check queried the database"
    );
}

//! Per-project, per-model rate limits: OpenAI's `project.rate_limit`, for the models
//! `RATE_LIMIT_MODELS` configures and those first seen at forward auth.

use admin_api_keys::config::Settings;
use admin_api_keys::domain::rate_limits::{ModelName, RateLimitModels};
use admin_api_keys::models::rate_limit;
use admin_api_keys::services::{self, rate_limits};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, read};
use crate::projects::{PROJECTS, archive, project_id};

backend_tests!(settings = with_models;
    every_configured_model_has_a_limit_with_its_defaults,
    an_update_sets_the_limits_it_names_and_keeps_the_rest,
    updates_take_only_non_negative_integers_for_known_limits,
    unknown_rate_limits_and_projects_are_404,
    an_archived_projects_limits_cannot_change,
    a_key_without_projects_write_cannot_change_limits,
    a_model_first_seen_gets_a_limit_in_every_project_with_the_defaults,
    model_names_with_a_slash_can_be_addressed,
    rate_limits_are_paged_by_id,
    limit_changes_are_audited_with_their_project,
);

const MODELS: &str =
    "gpt-4o rpm=500 tpm=30000 rpd=10000; ada tpm=7; org/llama-3 rpm=5; * rpm=60 tpm=1000";

fn with_models(settings: &mut Settings) {
    settings.rate_limit_models = RateLimitModels::parse(MODELS).unwrap();
}

fn limits_of(project: &str) -> String {
    format!("{PROJECTS}/{project}/rate_limits")
}

async fn every_configured_model_has_a_limit_with_its_defaults(app: TestApp) {
    let project = project_id(&app, "p").await;

    let (status, page) = read(app.get(&limits_of(&project)).await).await;

    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), ["rl-ada", "rl-gpt-4o", "rl-org/llama-3"]);
    assert_eq!(page["has_more"], false);
    assert_eq!(
        page["data"][1],
        json!({
            "object": "project.rate_limit",
            "id": "rl-gpt-4o",
            "model": "gpt-4o",
            "max_requests_per_1_minute": 500,
            "max_tokens_per_1_minute": 30000,
            "max_requests_per_1_day": 10000,
        })
    );
    assert_eq!(page["data"][0]["max_requests_per_1_minute"], 60, "from `*`");
    assert_eq!(page["data"][0]["max_tokens_per_1_minute"], 7);
    assert!(page["data"][0].get("max_requests_per_1_day").is_none());
}

async fn an_update_sets_the_limits_it_names_and_keeps_the_rest(app: TestApp) {
    let project = project_id(&app, "p").await;
    let path = format!("{}/rl-gpt-4o", limits_of(&project));

    // The OpenAI SDKs send every field, the unset ones as null.
    let body = json!({
        "max_requests_per_1_minute": 20,
        "max_tokens_per_1_minute": null,
        "max_images_per_1_minute": 3,
        "max_audio_megabytes_per_1_minute": null,
        "max_requests_per_1_day": null,
        "batch_1_day_max_input_tokens": null,
    });
    let (status, changed) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["max_requests_per_1_minute"], 20);
    assert_eq!(changed["max_images_per_1_minute"], 3);
    assert_eq!(
        changed["max_tokens_per_1_minute"], 30000,
        "the default stays"
    );
    assert_eq!(changed["max_requests_per_1_day"], 10000);

    let (_, again) = read(
        app.post_json(&path, &json!({ "max_requests_per_1_day": 0 }))
            .await,
    )
    .await;
    assert_eq!(
        again["max_requests_per_1_minute"], 20,
        "the earlier override stays"
    );
    assert_eq!(again["max_requests_per_1_day"], 0);
    let (_, page) = read(app.get(&limits_of(&project)).await).await;
    assert_eq!(page["data"][1], again);
    let other = project_id(&app, "other").await;
    let (_, untouched) = read(app.get(&limits_of(&other)).await).await;
    assert_eq!(
        untouched["data"][1]["max_requests_per_1_minute"], 500,
        "per project"
    );

    let effective = app
        .with_db(move |conn| {
            let defaults = RateLimitModels::parse(MODELS).unwrap();
            let model = ModelName::parse("model", "gpt-4o").unwrap();
            rate_limit::effective(conn, &defaults, &project, &model).unwrap()
        })
        .await;
    assert_eq!(effective.max_requests_per_1_minute, Some(20));
    assert_eq!(effective.max_tokens_per_1_minute, Some(30000));
    assert_eq!(effective.max_requests_per_1_day, Some(0));
}

async fn updates_take_only_non_negative_integers_for_known_limits(app: TestApp) {
    let project = project_id(&app, "p").await;
    let path = format!("{}/rl-ada", limits_of(&project));
    let cases = [
        (
            json!({ "max_requests_per_1_minute": -1 }),
            Some("max_requests_per_1_minute"),
        ),
        (
            json!({ "max_tokens_per_1_minute": 1.5 }),
            Some("max_tokens_per_1_minute"),
        ),
        (
            json!({ "max_requests_per_1_day": "10" }),
            Some("max_requests_per_1_day"),
        ),
        (
            json!({ "max_requests_per_1_hour": 10 }),
            Some("max_requests_per_1_hour"),
        ),
        (json!({}), None),
        (json!({ "max_requests_per_1_minute": null }), None),
    ];
    for (body, param) in cases {
        let error = assert_error(
            app.post_json(&path, &body).await,
            StatusCode::BAD_REQUEST,
            &body.to_string(),
        )
        .await;
        if let Some(param) = param {
            assert_eq!(error["param"], param, "{body}");
        }
    }
    let (_, page) = read(app.get(&limits_of(&project)).await).await;
    assert_eq!(
        page["data"][0]["max_requests_per_1_minute"], 60,
        "unchanged"
    );
}

async fn unknown_rate_limits_and_projects_are_404(app: TestApp) {
    let project = project_id(&app, "p").await;
    let body = json!({ "max_requests_per_1_minute": 1 });
    for (path, param) in [
        (
            format!("{}/rl-never-seen", limits_of(&project)),
            "rate_limit_id",
        ),
        (format!("{}/rl_ada", limits_of(&project)), "rate_limit_id"),
        (format!("{}/ada", limits_of(&project)), "rate_limit_id"),
        (
            format!("{}/rl-ada", limits_of("proj_000000000000000000000000")),
            "project_id",
        ),
    ] {
        let error = assert_error(
            app.post_json(&path, &body).await,
            StatusCode::NOT_FOUND,
            &path,
        )
        .await;
        assert_eq!(error["param"], param, "{path}");
    }
    let response = app.get(&limits_of("proj_000000000000000000000000")).await;
    assert_error(
        response,
        StatusCode::NOT_FOUND,
        "list of an unknown project",
    )
    .await;
}

async fn an_archived_projects_limits_cannot_change(app: TestApp) {
    let project = project_id(&app, "p").await;
    archive(&app, &project).await;

    let response = app
        .post_json(
            &format!("{}/rl-ada", limits_of(&project)),
            &json!({ "max_requests_per_1_minute": 1 }),
        )
        .await;

    let error = assert_error(response, StatusCode::BAD_REQUEST, "archived").await;
    assert_eq!(error["code"], "project_archived");
    let (status, page) = read(app.get(&limits_of(&project)).await).await;
    assert_eq!(status, StatusCode::OK, "still readable");
    assert_eq!(page["data"][0]["max_requests_per_1_minute"], 60);
}

async fn a_key_without_projects_write_cannot_change_limits(app: TestApp) {
    let project = project_id(&app, "p").await;
    let (_, key) = app.key_for(&app.owner_id, Some(&["projects.read"])).await;
    let path = format!("{}/rl-ada", limits_of(&project));

    let body = json!({ "max_requests_per_1_minute": 100000 });
    let response = app.send_as(&key, Method::POST, &path, Some(&body)).await;

    let error = assert_error(response, StatusCode::FORBIDDEN, "read-only key").await;
    assert_eq!(error["code"], "missing_scope.projects.write");
    let (status, page) = read(
        app.send_as(&key, Method::GET, &limits_of(&project), None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"][0]["max_requests_per_1_minute"], 60);
}

async fn a_model_first_seen_gets_a_limit_in_every_project_with_the_defaults(app: TestApp) {
    let first = project_id(&app, "first").await;
    let second = project_id(&app, "second").await;
    let note = |name: &'static str| {
        app.with_db(move |conn| {
            let defaults = RateLimitModels::parse(MODELS).unwrap();
            let model = ModelName::parse("model", name).unwrap();
            services::write_offline(conn, |conn| {
                rate_limits::note_model(conn, &defaults, &model, 1)
            })
            .unwrap()
        })
    };

    assert!(note("mistral-7b").await, "new");
    assert!(!note("mistral-7b").await, "seen already");
    assert!(!note("gpt-4o").await, "configured models are not recorded");

    for project in [&first, &second] {
        let (_, page) = read(app.get(&limits_of(project)).await).await;
        assert_eq!(
            ids(&page),
            ["rl-ada", "rl-gpt-4o", "rl-mistral-7b", "rl-org/llama-3"]
        );
        let seen: &Value = &page["data"][2];
        assert_eq!(
            seen["max_requests_per_1_minute"], 60,
            "`*` defaults: {seen}"
        );
        assert_eq!(seen["max_tokens_per_1_minute"], 1000);
    }
    let path = format!("{}/rl-mistral-7b", limits_of(&first));
    let (status, changed) = read(
        app.post_json(&path, &json!({ "max_requests_per_1_minute": 2 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["max_requests_per_1_minute"], 2);
}

async fn model_names_with_a_slash_can_be_addressed(app: TestApp) {
    let project = project_id(&app, "p").await;
    for (n, path) in [
        format!("{}/rl-org/llama-3", limits_of(&project)),
        format!("{}/rl-org%2Fllama-3", limits_of(&project)),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({ "max_requests_per_1_minute": n + 1 });
        let (status, changed) = read(app.post_json(&path, &body).await).await;
        assert_eq!(status, StatusCode::OK, "{path}: {changed}");
        assert_eq!(changed["id"], "rl-org/llama-3");
        assert_eq!(changed["max_requests_per_1_minute"], n + 1);
    }
}

async fn rate_limits_are_paged_by_id(app: TestApp) {
    let project = project_id(&app, "p").await;
    let path = limits_of(&project);

    let (_, first) = read(app.get(&format!("{path}?limit=2")).await).await;
    let (_, second) = read(app.get(&format!("{path}?limit=2&after=rl-gpt-4o")).await).await;
    let (_, back) = read(
        app.get(&format!("{path}?limit=1&before=rl-org/llama-3"))
            .await,
    )
    .await;

    assert_eq!(ids(&first), ["rl-ada", "rl-gpt-4o"]);
    assert_eq!(first["has_more"], true);
    assert_eq!(ids(&second), ["rl-org/llama-3"]);
    assert_eq!(second["has_more"], false);
    assert_eq!(ids(&back), ["rl-gpt-4o"]);
    assert_eq!(back["has_more"], true);
    for (query, param) in [
        ("limit=0", "limit"),
        ("after=rl-unknown", "after"),
        ("after=rl-ada&before=rl-gpt-4o", "before"),
    ] {
        let error = assert_error(
            app.get(&format!("{path}?{query}")).await,
            StatusCode::BAD_REQUEST,
            query,
        )
        .await;
        assert_eq!(error["param"], param, "{query}");
    }
}

async fn limit_changes_are_audited_with_their_project(app: TestApp) {
    let project = project_id(&app, "Limited").await;
    let path = format!("{}/rl-gpt-4o", limits_of(&project));
    app.post_json(
        &path,
        &json!({ "max_requests_per_1_minute": 9, "max_tokens_per_1_minute": null }),
    )
    .await;

    let (_, log) = read(
        app.get(&format!(
            "/v1/organization/audit_logs?event_types[]=rate_limit.updated&project_ids[]={project}"
        ))
        .await,
    )
    .await;

    let entry = &log["data"][0];
    assert_eq!(entry["type"], "rate_limit.updated", "{log}");
    assert_eq!(
        entry["rate_limit.updated"],
        json!({ "id": "rl-gpt-4o", "changes_requested": { "max_requests_per_1_minute": 9 } })
    );
    assert_eq!(
        entry["project"],
        json!({ "id": project, "name": "Limited" })
    );
}

//! Service accounts: a project's non-human key owners. Made with a first key shown once (or
//! without one), changed, given more keys, and deleted with their keys, which stop at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};
use crate::project_keys::{FORWARD, PROJECTS, forward, passes, project};

backend_tests!(
    a_service_account_is_made_with_a_first_key_shown_once,
    a_service_account_can_be_made_without_a_key,
    a_service_account_is_retrieved_listed_and_changed,
    a_service_account_gets_more_keys_with_scopes_the_caller_covers,
    deleting_a_service_account_deletes_its_keys_at_once,
    a_service_accounts_key_is_not_deleted_on_its_own,
    an_archived_projects_service_accounts_can_be_read_but_not_changed,
    service_account_changes_are_audited_with_their_project,
    a_key_made_while_its_account_is_deleted_is_refused_or_deleted_with_it,
);

fn accounts(project: &str) -> String {
    format!("{PROJECTS}/{project}/service_accounts")
}

/// A service account named `name` in `project` (asserting 200): the create response.
async fn account(app: &TestApp, project: &str, name: &str) -> Value {
    let (status, body) = read(
        app.post_json(&accounts(project), &json!({ "name": name }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_service_account_is_made_with_a_first_key_shown_once(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "Billing worker").await;
    assert_eq!(made["object"], "organization.project.service_account");
    assert!(
        made["id"].as_str().unwrap().starts_with("svc_acct_"),
        "{made}"
    );
    assert_eq!(made["name"], "Billing worker");
    assert_eq!(made["role"], "member");
    let key = &made["api_key"];
    assert_eq!(
        key["object"],
        "organization.project.service_account.api_key"
    );
    assert_eq!(key["name"], "Secret Key");
    let value = key["value"].as_str().unwrap();
    assert!(value.starts_with("sk-svcacct-"), "{key}");

    let (status, _, headers) = forward(&app, value, FORWARD).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-api-key-owner-type"], "service_account");
    assert_eq!(headers["x-api-key-owner-id"], made["id"].as_str().unwrap());
    assert_eq!(headers["x-api-key-project-id"], project.as_str());

    // Never shown again: the key object has its redacted form only.
    let path = format!(
        "{PROJECTS}/{project}/api_keys/{}",
        key["id"].as_str().unwrap()
    );
    let (_, shown) = read(app.get(&path).await).await;
    assert!(shown.get("value").is_none());
    assert!(!shown.to_string().contains(&value[12..]), "{shown}");
    assert_eq!(shown["owner"]["type"], "service_account");
}

async fn a_service_account_can_be_made_without_a_key(app: TestApp) {
    let project = project(&app).await;
    let body = json!({ "name": "bare", "create_service_account_only": true });
    let (status, made) = read(app.post_json(&accounts(&project), &body).await).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["role"], "none");
    assert_eq!(made["api_key"], Value::Null);
    let (_, keys) = read(app.get(&format!("{PROJECTS}/{project}/api_keys")).await).await;
    assert_eq!(keys["data"], json!([]));
    for (body, why) in [
        (json!({}), "no name"),
        (json!({ "name": "" }), "an empty name"),
        (json!({ "name": "x", "role": "owner" }), "an unknown field"),
    ] {
        let response = app.post_json(&accounts(&project), &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, why).await;
    }
}

async fn a_service_account_is_retrieved_listed_and_changed(app: TestApp) {
    let project = project(&app).await;
    let first = account(&app, &project, "one").await;
    // A second apart, so that creation order is the listing order.
    app.clock.advance(1);
    let second = account(&app, &project, "two").await;
    let path = format!("{}/{}", accounts(&project), first["id"].as_str().unwrap());
    let (status, shown) = read(app.get(&path).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        shown,
        json!({
            "object": "organization.project.service_account",
            "id": first["id"],
            "name": "one",
            "role": "member",
            "created_at": first["created_at"],
        })
    );
    let (_, page) = read(app.get(&format!("{}?limit=1", accounts(&project))).await).await;
    assert_eq!(crate::helpers::ids(&page), [first["id"].as_str().unwrap()]);
    assert_eq!(page["has_more"], true);
    let after = format!(
        "{}?after={}",
        accounts(&project),
        first["id"].as_str().unwrap()
    );
    let (_, next) = read(app.get(&after).await).await;
    assert_eq!(crate::helpers::ids(&next), [second["id"].as_str().unwrap()]);

    let body = json!({ "name": "renamed", "role": "owner" });
    let (status, changed) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (&changed["name"], &changed["role"]),
        (&json!("renamed"), &json!("owner"))
    );
    let response = app.post_json(&path, &json!({ "role": "admin" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "an unknown role").await;
    let response = app.post_json(&path, &json!({})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "nothing to change").await;

    let other = project_of_other(&app).await;
    let elsewhere = format!("{}/{}", accounts(&other), first["id"].as_str().unwrap());
    assert_eq!(
        app.get(&elsewhere).await.status(),
        StatusCode::NOT_FOUND,
        "another project's"
    );
    let unknown = format!("{}/svc_acct_nope", accounts(&project));
    assert_eq!(app.get(&unknown).await.status(), StatusCode::NOT_FOUND);
    let no_project = format!("{}/x", accounts("proj_nope"));
    assert_eq!(app.get(&no_project).await.status(), StatusCode::NOT_FOUND);
}

async fn project_of_other(app: &TestApp) -> String {
    project(app).await
}

async fn a_service_account_gets_more_keys_with_scopes_the_caller_covers(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "bot").await;
    let path = format!(
        "{}/{}/api_keys",
        accounts(&project),
        made["id"].as_str().unwrap()
    );
    let body = json!({ "name": "Production App", "scopes": ["api.responses.write"] });
    let (status, key) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(
        key["object"],
        "organization.project.service_account.api_key"
    );
    assert_eq!(key["name"], "Production App");
    let value = key["value"].as_str().unwrap();
    let (status, _, _) = forward(
        &app,
        value,
        &format!("{FORWARD}?permission=api.responses.write"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, code, _) =
        forward(&app, value, &format!("{FORWARD}?permission=api.files.read")).await;
    assert_eq!((status, code), (403, json!("missing_permission")));

    // An empty body makes a key named as the first one, with no scopes.
    let response = app.request(Method::POST, &path).send().await.unwrap();
    let (status, bare) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{bare}");
    assert_eq!(bare["name"], "Secret Key");

    let narrow = app
        .create_key(json!({
            "name": "narrow",
            "scopes": ["projects.read", "projects.write"],
            "permissions": ["api.responses.*"],
        }))
        .await;
    let narrow = narrow["value"].as_str().unwrap();
    let beyond = json!({ "scopes": ["api.*"] });
    let response = app
        .send_as(narrow, Method::POST, &path, Some(&beyond))
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "a wider pattern").await;
    assert_eq!(error["code"], "missing_permission");
    let within = json!({ "scopes": ["api.responses.read"] });
    let response = app
        .send_as(narrow, Method::POST, &path, Some(&within))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn deleting_a_service_account_deletes_its_keys_at_once(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "bot").await;
    let first = made["api_key"]["value"].as_str().unwrap().to_owned();
    let path = format!("{}/{}", accounts(&project), made["id"].as_str().unwrap());
    let (_, second) = read(app.post_json(&format!("{path}/api_keys"), &json!({})).await).await;
    let second = second["value"].as_str().unwrap().to_owned();
    for key in [&first, &second] {
        assert_eq!(passes(&app, key).await, 200, "cached before the delete");
    }
    let (status, body) = read(app.delete(&path).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "object": "organization.project.service_account.deleted", "id": made["id"], "deleted": true })
    );
    for key in [&first, &second] {
        let (status, code, _) = forward(&app, key, FORWARD).await;
        assert_eq!((status, code), (401, json!("invalid_api_key")));
    }
    let (_, keys) = read(app.get(&format!("{PROJECTS}/{project}/api_keys")).await).await;
    assert_eq!(keys["data"], json!([]));
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path).await.status(), StatusCode::NOT_FOUND);
}

async fn a_service_accounts_key_is_not_deleted_on_its_own(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "bot").await;
    let path = format!(
        "{PROJECTS}/{project}/api_keys/{}",
        made["api_key"]["id"].as_str().unwrap()
    );
    let error = assert_error(
        app.delete(&path).await,
        StatusCode::BAD_REQUEST,
        "an account's key",
    )
    .await;
    assert_eq!(error["code"], "service_account_key");
    assert_eq!(
        passes(&app, made["api_key"]["value"].as_str().unwrap()).await,
        200
    );
}

async fn an_archived_projects_service_accounts_can_be_read_but_not_changed(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "bot").await;
    let (status, _) = read(
        app.post_json(&format!("{PROJECTS}/{project}/archive"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("{}/{}", accounts(&project), made["id"].as_str().unwrap());
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    assert_eq!(app.get(&accounts(&project)).await.status(), StatusCode::OK);
    let attempts = [
        app.post_json(&accounts(&project), &json!({ "name": "late" }))
            .await,
        app.post_json(&path, &json!({ "name": "late" })).await,
        app.post_json(&format!("{path}/api_keys"), &json!({})).await,
        app.delete(&path).await,
    ];
    for response in attempts {
        let error = assert_error(response, StatusCode::BAD_REQUEST, "archived").await;
        assert_eq!(error["code"], "project_archived");
    }
}

async fn service_account_changes_are_audited_with_their_project(app: TestApp) {
    let project = project(&app).await;
    let made = account(&app, &project, "bot").await;
    let path = format!("{}/{}", accounts(&project), made["id"].as_str().unwrap());
    app.post_json(&path, &json!({ "role": "owner" })).await;
    app.delete(&path).await;
    let audit = format!("/v1/organization/audit_logs?project_ids[]={project}&limit=100");
    let (status, entries) = read(app.get(&audit).await).await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let types: Vec<&str> = entries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for wanted in [
        "service_account.created",
        "service_account.updated",
        "service_account.deleted",
        "api_key.created",
        "api_key.deleted",
    ] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }
    let created = entries["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "service_account.created")
        .unwrap();
    assert_eq!(created["service_account.created"]["id"], made["id"]);
    assert_eq!(created["service_account.created"]["data"]["role"], "member");
    assert_eq!(created["project"]["id"], project.as_str(), "{created}");
}

async fn a_key_made_while_its_account_is_deleted_is_refused_or_deleted_with_it(app: TestApp) {
    let project = project(&app).await;
    for round in 0..8 {
        let made = account(&app, &project, &format!("racer {round}")).await;
        let id = made["id"].as_str().unwrap();
        let path = format!("{}/{id}", accounts(&project));
        let body = json!({ "name": "late" });
        let more_keys = format!("{path}/api_keys");
        let (created, deleted) = tokio::join!(app.post_json(&more_keys, &body), app.delete(&path));
        let (created, deleted) = (created.status(), deleted.status());
        assert_eq!(deleted, StatusCode::OK, "round {round}");
        assert!(
            [StatusCode::OK, StatusCode::NOT_FOUND].contains(&created),
            "round {round}: a key for an account being deleted got {created}"
        );
    }
    // Whichever came first, no key outlived its account.
    let (_, keys) = read(app.get(&format!("{PROJECTS}/{project}/api_keys")).await).await;
    assert_eq!(keys["data"], json!([]), "{keys}");
}

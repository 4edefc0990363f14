//! An invite's `projects` (upstream's contract): the projects the invitee joins, with a role
//! in each, when they accept. Granting them needs `projects.write` and active projects.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};
use crate::project_keys::{PROJECTS, project};

backend_tests!(
    an_accepted_invite_makes_the_member_join_its_projects_with_their_roles,
    granting_projects_needs_projects_write_and_existing_active_projects,
    a_project_archived_before_the_acceptance_is_skipped,
);

const INVITES: &str = "/v1/organization/invites";
const ACCEPT: &str = "/v1/organization/invites/accept";

/// Invites `email` as a reader into `projects` (asserting 200): the create response.
async fn invite_into(app: &TestApp, email: &str, projects: Value) -> Value {
    let body = json!({ "email": email, "role": "reader", "projects": projects });
    let (status, made) = read(app.post_json(INVITES, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    made
}

/// Accepts the invite `made` as Grace (asserting 200): the new member's id.
async fn accept(app: &TestApp, made: &Value) -> String {
    let body = json!({ "token": made["accept_token"], "name": "Grace" });
    let response = app.client.post(app.url(ACCEPT)).json(&body).send().await;
    let (status, accepted) = read(response.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    accepted["user"]["id"].as_str().unwrap().to_owned()
}

/// The role of `user` in `project`, or the error code when they are not a member.
async fn role_in(app: &TestApp, project: &str, user: &str) -> Value {
    let (_, body) = read(app.get(&format!("{PROJECTS}/{project}/users/{user}")).await).await;
    match body.get("role") {
        Some(role) => role.clone(),
        None => body["error"]["code"].clone(),
    }
}

async fn an_accepted_invite_makes_the_member_join_its_projects_with_their_roles(app: TestApp) {
    let (shop, billing) = (project(&app).await, project(&app).await);
    let grants = json!([
        { "id": shop, "role": "member" },
        { "id": billing, "role": "owner" },
    ]);
    let made = invite_into(&app, "grace@example.com", grants.clone()).await;
    let sorted = |mut projects: Vec<Value>| {
        projects.sort_by_key(|p| p["id"].as_str().unwrap().to_owned());
        projects
    };
    let expected = sorted(grants.as_array().unwrap().clone());
    assert_eq!(
        sorted(made["projects"].as_array().unwrap().clone()),
        expected
    );

    // Retrieve and list show them as the create did.
    let id = made["id"].as_str().unwrap();
    let (_, shown) = read(app.get(&format!("{INVITES}/{id}")).await).await;
    assert_eq!(
        sorted(shown["projects"].as_array().unwrap().clone()),
        expected
    );
    let (_, page) = read(app.get(INVITES).await).await;
    assert_eq!(
        sorted(page["data"][0]["projects"].as_array().unwrap().clone()),
        expected
    );

    let member = accept(&app, &made).await;
    assert_eq!(role_in(&app, &shop, &member).await, "member");
    assert_eq!(role_in(&app, &billing, &member).await, "owner");

    // Each membership is audited with its project, by the new member's session.
    let path = format!("/v1/organization/audit_logs?project_ids[]={shop}&event_types[]=user.added");
    let (_, logs) = read(app.get(&path).await).await;
    let entries = logs["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{logs}");
    assert_eq!(entries[0]["project"]["id"], shop.as_str());
    assert_eq!(entries[0]["actor"]["type"], "session");
    assert_eq!(entries[0]["user.added"]["id"], member.as_str());
}

async fn granting_projects_needs_projects_write_and_existing_active_projects(app: TestApp) {
    let shop = project(&app).await;
    let archived = project(&app).await;
    let path = format!("{PROJECTS}/{archived}/archive");
    assert_eq!(
        app.post_json(&path, &json!({})).await.status(),
        StatusCode::OK
    );

    // A key that may invite readers but not change projects.
    let (_, boot) = read(
        app.get(&format!(
            "/v1/organization/admin_api_keys/{}",
            app.admin_key_id
        ))
        .await,
    )
    .await;
    let scopes: Vec<&str> = boot["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .filter(|s| *s != "projects.write")
        .collect();
    let (_, no_projects) = app.key_for(&app.owner_id, Some(&scopes)).await;
    let body = json!({
        "email": "grace@example.com",
        "role": "reader",
        "projects": [{ "id": shop, "role": "member" }],
    });
    let response = app
        .send_as(&no_projects, Method::POST, INVITES, Some(&body))
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "without projects.write").await;
    assert_eq!(error["code"], "missing_scope.projects.write");
    // The same key may still invite with no projects.
    let plain = json!({ "email": "grace@example.com", "role": "reader" });
    let response = app
        .send_as(&no_projects, Method::POST, INVITES, Some(&plain))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let cases = [
        (
            "proj_nosuchprojectexists000001",
            StatusCode::NOT_FOUND,
            "an unknown project",
        ),
        (
            archived.as_str(),
            StatusCode::BAD_REQUEST,
            "an archived project",
        ),
    ];
    for (id, status, case) in cases {
        let body = json!({
            "email": "alan@example.com",
            "role": "reader",
            "projects": [{ "id": shop, "role": "member" }, { "id": id, "role": "member" }],
        });
        let error = assert_error(app.post_json(INVITES, &body).await, status, case).await;
        assert_eq!(error["param"], "projects", "{case}: {error}");
    }
    // Nothing of the refused invites was kept.
    let (_, page) = read(app.get(INVITES).await).await;
    let emails: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["grace@example.com"]);
}

async fn a_project_archived_before_the_acceptance_is_skipped(app: TestApp) {
    let (kept, closed) = (project(&app).await, project(&app).await);
    let grants = json!([{ "id": kept, "role": "member" }, { "id": closed, "role": "member" }]);
    let made = invite_into(&app, "grace@example.com", grants).await;
    let path = format!("{PROJECTS}/{closed}/archive");
    assert_eq!(
        app.post_json(&path, &json!({})).await.status(),
        StatusCode::OK
    );

    let member = accept(&app, &made).await;

    assert_eq!(role_in(&app, &kept, &member).await, "member");
    let (status, _) = read(
        app.get(&format!("{PROJECTS}/{closed}/users/{member}"))
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no member of an archived project"
    );
}

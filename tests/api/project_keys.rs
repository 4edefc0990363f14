//! Project API keys (`sk-proj-…` of a member, `sk-svcacct-…` of a service account): made and
//! listed through the admin API, verified at forward auth and introspection on the same path
//! as admin keys, refused by the admin API itself, and stopped on the next request when their
//! owner loses access to the project (archive, member removed, user disabled or deleted).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    a_members_key_passes_forward_auth_with_its_project_owner_and_scopes,
    the_project_filter_refuses_keys_of_other_projects_and_admin_keys,
    project_key_scopes_are_checked_like_permissions,
    the_admin_api_refuses_project_keys_with_a_401_that_says_so,
    introspection_describes_project_keys,
    archiving_the_project_stops_its_keys_on_the_next_request,
    removing_or_disabling_the_member_stops_their_key_on_the_next_request,
    deleting_a_user_deletes_their_project_keys,
    a_cached_project_key_check_makes_no_database_statement,
    project_key_uses_show_as_last_used_at,
    keys_are_listed_with_their_owner_and_access,
    a_member_key_needs_a_member_and_scopes_the_caller_covers,
    deleting_a_members_key_stops_it_at_once,
);

pub const PROJECTS: &str = "/v1/organization/projects";
pub const FORWARD: &str = "/v1/forward-auth";
const INTROSPECT: &str = "/v1/introspect";

/// A new project (asserting 200); its id.
pub async fn project(app: &TestApp) -> String {
    let (status, body) = read(app.post_json(PROJECTS, &json!({ "name": "Shop" })).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A new organisation member added to `project` as a member; their id.
pub async fn member_of(app: &TestApp, project: &str) -> String {
    let user = app.add_member("owner").await;
    let path = format!("{PROJECTS}/{project}/users");
    let body = json!({ "user_id": user, "role": "member" });
    let (status, body) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    user
}

/// A key for the member `user` of `project` with `scopes`: the create response.
pub async fn member_key(app: &TestApp, project: &str, user: &str, scopes: &[&str]) -> Value {
    let path = format!("{PROJECTS}/{project}/api_keys");
    let body = json!({ "user_id": user, "name": "app", "scopes": scopes });
    let (status, body) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Forward auth of `key` at `path`: status, error code (or null) and the response headers.
pub async fn forward(
    app: &TestApp,
    key: &str,
    path: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = app.request_as(key, Method::GET, path).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].clone(), headers)
}

/// The status of a plain forward-auth check of `key`.
pub async fn passes(app: &TestApp, key: &str) -> u16 {
    forward(app, key, FORWARD).await.0
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} is set"))
        .to_str()
        .unwrap()
}

pub fn value(key: &Value) -> &str {
    key["value"].as_str().unwrap()
}

async fn a_members_key_passes_forward_auth_with_its_project_owner_and_scopes(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &["chat:*", "models:read"]).await;
    assert!(value(&key).starts_with("sk-proj-"), "{key}");
    assert_eq!(key["owner"]["type"], "user");
    assert_eq!(key["owner"]["user"]["id"], user.as_str());
    assert_eq!(key["owner_project_access"], "active");

    let (status, code, headers) = forward(&app, value(&key), FORWARD).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(
        header(&headers, "x-api-key-id"),
        key["id"].as_str().unwrap()
    );
    assert_eq!(header(&headers, "x-api-key-project-id"), project);
    assert_eq!(header(&headers, "x-api-key-owner-type"), "user");
    assert_eq!(header(&headers, "x-api-key-owner-id"), user);
    assert_eq!(header(&headers, "x-api-key-scopes"), "chat:* models:read");

    // An admin key says what it is too, and names no project.
    let (status, _, headers) = forward(&app, &app.admin_key, FORWARD).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-api-key-owner-type"), "user");
    assert!(headers.get("x-api-key-project-id").is_none());
}

async fn the_project_filter_refuses_keys_of_other_projects_and_admin_keys(app: TestApp) {
    let (shop, other) = (project(&app).await, project(&app).await);
    let user = member_of(&app, &shop).await;
    let key = member_key(&app, &shop, &user, &[]).await;
    let cases = [
        (
            value(&key),
            format!("{FORWARD}?project={shop}"),
            200,
            "its own project",
        ),
        (
            value(&key),
            format!("{FORWARD}?project={other}&project={shop}"),
            200,
            "one of several",
        ),
        (
            value(&key),
            format!("{FORWARD}?project={other}"),
            403,
            "another project",
        ),
        (
            &app.admin_key,
            format!("{FORWARD}?project={shop}"),
            403,
            "an admin key has no project",
        ),
        (
            value(&key),
            format!("{FORWARD}/v1/chat/completions?project={other}"),
            403,
            "the path form counts it too",
        ),
    ];
    for (token, path, expected, why) in cases {
        let (status, code, _) = forward(&app, token, &path).await;
        assert_eq!(status, expected, "{why}: {code}");
        if expected == 403 {
            assert_eq!(code, "wrong_project", "{why}");
        }
    }
    let (status, code, _) = forward(&app, value(&key), &format!("{FORWARD}?project=")).await;
    assert_eq!(
        (status, code),
        (400, json!("invalid_project")),
        "an empty project"
    );
}

async fn project_key_scopes_are_checked_like_permissions(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &["chat:*", "models:read"]).await;
    let unscoped = member_key(&app, &project, &user, &[]).await;
    let cases = [
        (value(&key), "chat:write", 200),
        (value(&key), "models:read", 200),
        (value(&key), "models:write", 403),
        (value(&key), "billing:read", 403),
        (value(&unscoped), "chat:write", 403),
    ];
    for (token, permission, expected) in cases {
        let (status, code, _) =
            forward(&app, token, &format!("{FORWARD}?permission={permission}")).await;
        assert_eq!(status, expected, "{permission}: {code}");
        if expected == 403 {
            assert_eq!(code, "missing_permission");
        }
    }
    assert_eq!(
        passes(&app, value(&unscoped)).await,
        200,
        "nothing required"
    );
}

async fn the_admin_api_refuses_project_keys_with_a_401_that_says_so(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    let path = format!("{PROJECTS}/{project}/service_accounts");
    let (status, account) = read(app.post_json(&path, &json!({ "name": "bot" })).await).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let service_key = account["api_key"]["value"].as_str().unwrap().to_owned();
    assert!(service_key.starts_with("sk-svcacct-"));

    for (token, why) in [
        (value(&key), "a member's key"),
        (&service_key, "a service account's key"),
    ] {
        let response = app
            .request_as(token, Method::GET, "/v1/organization/admin_api_keys")
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::UNAUTHORIZED, why).await;
        assert_eq!(error["code"], "project_key_not_allowed", "{why}");
        assert!(
            error["message"].as_str().unwrap().contains("admin API"),
            "{why}"
        );
        assert!(!error.to_string().contains(&token[10..]), "{why}: echoed");
    }
    // The checksum is checked first: a mistyped project key is just invalid.
    let mut typo = value(&key).to_owned();
    typo.replace_range(20..21, if &typo[20..21] == "a" { "b" } else { "a" });
    let response = app
        .request_as(&typo, Method::GET, "/v1/organization/admin_api_keys")
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::UNAUTHORIZED, "a typo").await;
    assert_eq!(error["code"], "invalid_api_key");
    assert_eq!(passes(&app, &typo).await, 401);
}

async fn introspection_describes_project_keys(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &["chat:*"]).await;
    let (status, body) = read(
        app.post_json(INTROSPECT, &json!({ "token": value(&key) }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "project_api_key");
    assert_eq!(body["project_id"], project.as_str());
    assert_eq!(body["owner_type"], "user");
    assert_eq!(body["sub"], user.as_str());
    assert_eq!(body["client_id"], key["id"]);
    assert_eq!(body["scope"], "chat:*");

    let path = format!("{PROJECTS}/{project}/service_accounts");
    let (_, account) = read(app.post_json(&path, &json!({ "name": "bot" })).await).await;
    let token = account["api_key"]["value"].as_str().unwrap();
    let (_, body) = read(app.post_json(INTROSPECT, &json!({ "token": token })).await).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["owner_type"], "service_account");
    assert_eq!(body["sub"], account["id"]);
    assert_eq!(body["project_id"], project.as_str());

    let (_, admin) = read(
        app.post_json(INTROSPECT, &json!({ "token": app.admin_key }))
            .await,
    )
    .await;
    assert_eq!(admin["owner_type"], "user");
    assert!(admin.get("project_id").is_none(), "{admin}");
}

async fn inactive(app: &TestApp, token: &str) -> bool {
    let (_, body) = read(app.post_json(INTROSPECT, &json!({ "token": token })).await).await;
    body == json!({ "active": false })
}

async fn archiving_the_project_stops_its_keys_on_the_next_request(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    let path = format!("{PROJECTS}/{project}/service_accounts");
    let (_, account) = read(app.post_json(&path, &json!({ "name": "bot" })).await).await;
    let service_key = account["api_key"]["value"].as_str().unwrap().to_owned();
    for token in [value(&key), &service_key] {
        assert_eq!(passes(&app, token).await, 200, "cached before the archive");
    }
    let archive = format!("{PROJECTS}/{project}/archive");
    let (status, body) = read(app.post_json(&archive, &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [value(&key), &service_key] {
        let (status, code, _) = forward(&app, token, FORWARD).await;
        assert_eq!((status, code), (401, json!("owner_inactive")));
        assert!(inactive(&app, token).await);
    }
    let (_, shown) = read(
        app.get(&format!(
            "{PROJECTS}/{project}/api_keys/{}",
            key["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(shown["owner_project_access"], "inactive", "{shown}");
}

async fn removing_or_disabling_the_member_stops_their_key_on_the_next_request(app: TestApp) {
    let project = project(&app).await;
    let (leaver, disabled) = (
        member_of(&app, &project).await,
        member_of(&app, &project).await,
    );
    let leaver_key = member_key(&app, &project, &leaver, &[]).await;
    let disabled_key = member_key(&app, &project, &disabled, &[]).await;
    for key in [&leaver_key, &disabled_key] {
        assert_eq!(passes(&app, value(key)).await, 200);
    }
    let response = app
        .delete(&format!("{PROJECTS}/{project}/users/{leaver}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let users = format!("/v1/organization/users/{disabled}");
    let (status, body) = read(app.post_json(&users, &json!({ "enabled": false })).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for key in [&leaver_key, &disabled_key] {
        let (status, code, _) = forward(&app, value(key), FORWARD).await;
        assert_eq!((status, code), (401, json!("owner_inactive")));
        let path = format!(
            "{PROJECTS}/{project}/api_keys/{}",
            key["id"].as_str().unwrap()
        );
        let (_, shown) = read(app.get(&path).await).await;
        assert_eq!(
            shown["owner_project_access"], "inactive",
            "the key object remains"
        );
    }
    // Enabled again, the member's key works again.
    let (status, _) = read(app.post_json(&users, &json!({ "enabled": true })).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(passes(&app, value(&disabled_key)).await, 200);
}

async fn deleting_a_user_deletes_their_project_keys(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    assert_eq!(passes(&app, value(&key)).await, 200);
    let response = app.delete(&format!("/v1/organization/users/{user}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, code, _) = forward(&app, value(&key), FORWARD).await;
    assert_eq!((status, code), (401, json!("invalid_api_key")));
    let path = format!(
        "{PROJECTS}/{project}/api_keys/{}",
        key["id"].as_str().unwrap()
    );
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let audit = format!(
        "/v1/organization/audit_logs?event_types[]=api_key.deleted&project_ids[]={project}"
    );
    let (_, entries) = read(app.get(&audit).await).await;
    assert_eq!(
        entries["data"][0]["api_key.deleted"]["id"], key["id"],
        "{entries}"
    );
}

async fn a_cached_project_key_check_makes_no_database_statement(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &["chat:*"]).await;
    // Every notification of the setup applied first (a late one would empty the caches in
    // the middle of the count below); then the first checks fill the cache.
    app.settle().await;
    let mut cached = false;
    for _ in 0..20 {
        let before = app.queries();
        assert_eq!(passes(&app, value(&key)).await, 200);
        if app.queries() == before {
            cached = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cached, "the key was never served from the cache");
    let before = app.queries();
    for n in 0..20 {
        let path = format!("{FORWARD}?project={project}&permission=chat:{n}");
        assert_eq!(forward(&app, value(&key), &path).await.0, 200);
    }
    assert_eq!(
        app.queries() - before,
        0,
        "a cached check queried the database"
    );
}

async fn project_key_uses_show_as_last_used_at(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    assert_eq!(key["last_used_at"], Value::Null);
    app.clock.advance(5);
    assert_eq!(passes(&app, value(&key)).await, 200);
    let used = admin_api_keys::clock::Clock::now(&app.clock);
    app.flush_usage().await;
    let path = format!(
        "{PROJECTS}/{project}/api_keys/{}",
        key["id"].as_str().unwrap()
    );
    let (_, shown) = read(app.get(&path).await).await;
    assert_eq!(shown["last_used_at"], used, "{shown}");
}

async fn keys_are_listed_with_their_owner_and_access(app: TestApp) {
    let project = project(&app).await;
    let (stays, leaves) = (
        member_of(&app, &project).await,
        member_of(&app, &project).await,
    );
    // A second apart, so that creation order is the listing order.
    let kept = member_key(&app, &project, &stays, &[]).await;
    app.clock.advance(1);
    let left = member_key(&app, &project, &leaves, &[]).await;
    app.clock.advance(1);
    let accounts = format!("{PROJECTS}/{project}/service_accounts");
    let (_, account) = read(app.post_json(&accounts, &json!({ "name": "bot" })).await).await;
    app.delete(&format!("{PROJECTS}/{project}/users/{leaves}"))
        .await;

    let keys = format!("{PROJECTS}/{project}/api_keys");
    let (status, all) = read(app.get(&keys).await).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{all}");
    assert_eq!(data[0]["id"], kept["id"]);
    assert_eq!(data[0]["object"], "organization.project.api_key");
    assert!(
        data[0]["redacted_value"]
            .as_str()
            .unwrap()
            .starts_with("sk-proj-...")
    );
    assert!(
        data[0].get("value").is_none(),
        "a list never shows a secret"
    );
    assert_eq!(data[2]["owner"]["type"], "service_account");
    assert_eq!(data[2]["owner"]["service_account"]["id"], account["id"]);
    assert_eq!(data[2]["owner"]["service_account"]["role"], "member");

    let (_, active) = read(
        app.get(&format!("{keys}?owner_project_access=active"))
            .await,
    )
    .await;
    let (_, inactive) = read(
        app.get(&format!("{keys}?owner_project_access=inactive"))
            .await,
    )
    .await;
    assert_eq!(crate::helpers::ids(&active).len(), 2, "{active}");
    assert_eq!(
        crate::helpers::ids(&inactive),
        [left["id"].as_str().unwrap()]
    );
    assert_eq!(inactive["data"][0]["owner"]["user"]["role"], "none");

    let (_, page) = read(app.get(&format!("{keys}?limit=1")).await).await;
    assert_eq!(page["has_more"], true);
    let after = page["last_id"].as_str().unwrap();
    let (_, next) = read(app.get(&format!("{keys}?limit=2&after={after}")).await).await;
    assert_eq!(crate::helpers::ids(&next)[0], left["id"].as_str().unwrap());
    assert_eq!(next["has_more"], false);
    let bad = app.get(&format!("{keys}?owner_project_access=some")).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "a bad filter").await;
}

async fn a_member_key_needs_a_member_and_scopes_the_caller_covers(app: TestApp) {
    let project = project(&app).await;
    let outsider = app.add_member("owner").await;
    let user = member_of(&app, &project).await;
    let keys = format!("{PROJECTS}/{project}/api_keys");
    let response = app
        .post_json(&keys, &json!({ "user_id": outsider, "name": "x" }))
        .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "not a member").await;
    assert_eq!(error["code"], "not_a_project_member");
    let response = app.post_json(&keys, &json!({ "name": "x" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "no user_id").await;
    let response = app
        .post_json(&keys, &json!({ "user_id": user, "scopes": ["bad scope"] }))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "an invalid scope").await;

    // A caller with projects.write but only `chat:*` grants only within it.
    let made = app
        .create_key(json!({
            "name": "project admin",
            "scopes": ["projects.read", "projects.write"],
            "permissions": ["chat:*"],
        }))
        .await;
    let caller = made["value"].as_str().unwrap();
    let within = json!({ "user_id": user, "scopes": ["chat:completions"] });
    let response = app
        .send_as(caller, Method::POST, &keys, Some(&within))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let beyond = json!({ "user_id": user, "scopes": ["billing:read"] });
    let response = app
        .send_as(caller, Method::POST, &keys, Some(&beyond))
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "escalation").await;
    assert_eq!(error["code"], "missing_permission");

    // Reading needs projects.read.
    let reader = app
        .create_key(json!({ "name": "no projects", "scopes": ["admin_api_keys.read"] }))
        .await;
    let response = app
        .send_as(reader["value"].as_str().unwrap(), Method::GET, &keys, None)
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "no projects.read").await;
    assert_eq!(error["code"], "missing_scope.projects.read");
}

async fn deleting_a_members_key_stops_it_at_once(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    assert_eq!(passes(&app, value(&key)).await, 200);
    let path = format!(
        "{PROJECTS}/{project}/api_keys/{}",
        key["id"].as_str().unwrap()
    );
    let (status, body) = read(app.delete(&path).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "object": "organization.project.api_key.deleted", "id": key["id"], "deleted": true })
    );
    assert_eq!(passes(&app, value(&key)).await, 401);
    assert_eq!(app.delete(&path).await.status(), StatusCode::NOT_FOUND);
    let audit = format!(
        "/v1/organization/audit_logs?project_ids[]={project}&event_types[]=api_key.created"
    );
    let (_, entries) = read(app.get(&audit).await).await;
    assert_eq!(
        entries["data"][0]["api_key.created"]["id"], key["id"],
        "{entries}"
    );
}

/// Retries `check` for up to a second.
pub async fn within_a_second(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let since = Instant::now();
    while !check().await {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{what}: not seen on the other replica within a second"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn losing_access_reaches_forward_auth_on_another_replica_within_a_second() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let (shop, other) = (project(&a).await, project(&a).await);
    let (leaver, disabled) = (member_of(&a, &shop).await, member_of(&a, &shop).await);
    let leaver_key = member_key(&a, &shop, &leaver, &[]).await;
    let disabled_key = member_key(&a, &shop, &disabled, &[]).await;
    let accounts = format!("{PROJECTS}/{shop}/service_accounts");
    let (_, account) = read(a.post_json(&accounts, &json!({ "name": "bot" })).await).await;
    let service_key = account["api_key"]["value"].as_str().unwrap().to_owned();
    let archived_member = member_of(&a, &other).await;
    let archived_key = member_key(&a, &other, &archived_member, &[]).await;
    let keys = [
        value(&leaver_key),
        value(&disabled_key),
        &service_key,
        value(&archived_key),
    ];
    for key in keys {
        within_a_second("a new key", async || passes(&b, key).await == 200).await;
        // Cached on B now.
        assert_eq!(passes(&b, key).await, 200);
    }
    a.delete(&format!("{PROJECTS}/{shop}/users/{leaver}")).await;
    within_a_second("a removed member", async || {
        passes(&b, keys[0]).await == 401
    })
    .await;
    let users = format!("/v1/organization/users/{disabled}");
    a.post_json(&users, &json!({ "enabled": false })).await;
    within_a_second("a disabled user", async || passes(&b, keys[1]).await == 401).await;
    let account_path = format!("{accounts}/{}", account["id"].as_str().unwrap());
    a.delete(&account_path).await;
    within_a_second("a deleted service account", async || {
        passes(&b, keys[2]).await == 401
    })
    .await;
    a.post_json(&format!("{PROJECTS}/{other}/archive"), &json!({}))
        .await;
    within_a_second("an archived project", async || {
        passes(&b, keys[3]).await == 401
    })
    .await;
}

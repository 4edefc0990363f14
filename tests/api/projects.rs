//! Projects: OpenAI's `organization.project`, created, listed, renamed and archived for good.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, read};

backend_tests!(
    a_created_project_is_active_and_can_be_retrieved,
    create_needs_a_valid_name_and_takes_only_upstream_residencies,
    projects_are_listed_oldest_first_and_paged_without_repeats,
    archived_projects_are_listed_only_when_asked_for,
    a_project_can_be_renamed_and_its_external_key_id_cleared,
    an_archived_project_is_read_only,
    archiving_twice_changes_nothing,
    unknown_projects_are_404_whatever_the_operation,
    a_key_without_projects_write_cannot_change_projects,
    a_readers_key_can_read_projects_but_never_change_them,
    every_project_change_is_in_the_audit_log_with_its_project,
);

pub const PROJECTS: &str = "/v1/organization/projects";

/// Creates a project named `name` with the bootstrap key (asserting 200).
pub async fn create_project(app: &TestApp, name: &str) -> Value {
    let (status, project) = read(app.post_json(PROJECTS, &json!({ "name": name })).await).await;
    assert_eq!(status, StatusCode::OK, "{project}");
    project
}

/// The id of a new project named `name`.
pub async fn project_id(app: &TestApp, name: &str) -> String {
    create_project(app, name).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Archives the project `id` (asserting 200).
pub async fn archive(app: &TestApp, id: &str) -> Value {
    let (status, project) = read(
        app.post_json(&format!("{PROJECTS}/{id}/archive"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{project}");
    project
}

async fn a_created_project_is_active_and_can_be_retrieved(app: TestApp) {
    let body = json!({
        "name": "  Checkout  ",
        "residency": "EU_STORAGE_PROCESSING",
        "external_key_id": "ekm-1",
    });
    let (status, made) = read(app.post_json(PROJECTS, &body).await).await;

    assert_eq!(status, StatusCode::OK, "{made}");
    let id = made["id"].as_str().unwrap();
    assert!(id.starts_with("proj_") && id.len() == 29, "{id}");
    assert_eq!(made["object"], "organization.project");
    assert_eq!(made["name"], "Checkout", "the name is trimmed");
    assert_eq!(made["status"], "active");
    assert_eq!(made["archived_at"], Value::Null);
    assert_eq!(
        made["created_at"],
        admin_api_keys::clock::Clock::now(&app.clock)
    );
    assert_eq!(made["residency"], "EU_STORAGE_PROCESSING");
    assert_eq!(made["external_key_id"], "ekm-1");
    let (status, retrieved) = read(app.get(&format!("{PROJECTS}/{id}")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retrieved, made);

    let plain = create_project(&app, "Plain").await;
    assert!(
        plain.get("residency").is_none(),
        "no residency, no field: {plain}"
    );
    assert_eq!(plain["external_key_id"], Value::Null);
}

async fn create_needs_a_valid_name_and_takes_only_upstream_residencies(app: TestApp) {
    let cases = [
        (json!({}), "name", "no name"),
        (json!({ "name": "  " }), "name", "a blank name"),
        (
            json!({ "name": "a\u{202E}b" }),
            "name",
            "an invisible override",
        ),
        (
            json!({ "name": "x".repeat(257) }),
            "name",
            "a name too long",
        ),
        (
            json!({ "name": "p", "residency": "MARS" }),
            "residency",
            "an unknown residency",
        ),
        (
            json!({ "name": "p", "external_key_id": "" }),
            "external_key_id",
            "an empty external key id",
        ),
        (
            json!({ "name": "p", "owner": "me" }),
            "owner",
            "an unknown field",
        ),
    ];
    for (body, param, why) in cases {
        let error = assert_error(
            app.post_json(PROJECTS, &body).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
        assert_eq!(error["param"], param, "{why}");
    }
    let (_, page) = read(app.get(&format!("{PROJECTS}?include_archived=true")).await).await;
    assert!(ids(&page).is_empty(), "nothing was made: {page}");
}

async fn projects_are_listed_oldest_first_and_paged_without_repeats(app: TestApp) {
    let mut made = Vec::new();
    for n in 0..5 {
        // Two per second: ties in `created_at` are ordered by id.
        if n % 2 == 0 {
            app.clock.advance(1);
        }
        made.push(project_id(&app, &format!("p{n}")).await);
    }
    let mut expected = made.clone();
    expected.sort_by_key(|id| {
        let n = made.iter().position(|m| m == id).unwrap();
        (n / 2, id.clone())
    });

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            None => "limit=2".to_owned(),
            Some(id) => format!("limit=2&after={id}"),
        };
        let (status, page) = read(app.get(&format!("{PROJECTS}?{query}")).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["object"], "list");
        seen.extend(ids(&page));
        assert_eq!(page["last_id"].as_str(), seen.last().map(String::as_str));
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        after = page["last_id"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, expected);

    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("after=proj_000000000000000000000000", "after"),
        ("include_archived=yes", "include_archived"),
        ("order=desc", "order"),
    ] {
        let response = app.get(&format!("{PROJECTS}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
}

async fn archived_projects_are_listed_only_when_asked_for(app: TestApp) {
    let kept = project_id(&app, "kept").await;
    let gone = project_id(&app, "gone").await;
    archive(&app, &gone).await;

    let (_, default) = read(app.get(PROJECTS).await).await;
    let (_, explicit) = read(app.get(&format!("{PROJECTS}?include_archived=false")).await).await;
    let (_, all) = read(app.get(&format!("{PROJECTS}?include_archived=true")).await).await;

    assert_eq!(ids(&default), vec![kept.clone()]);
    assert_eq!(ids(&explicit), vec![kept.clone()]);
    let mut both = ids(&all);
    both.sort();
    let mut expected = vec![kept, gone.clone()];
    expected.sort();
    assert_eq!(both, expected);
    let archived = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == gone.as_str())
        .unwrap();
    assert_eq!(archived["status"], "archived");
}

async fn a_project_can_be_renamed_and_its_external_key_id_cleared(app: TestApp) {
    let made = app
        .post_json(
            PROJECTS,
            &json!({ "name": "Old", "external_key_id": "ekm-1" }),
        )
        .await;
    let (_, made) = read(made).await;
    let path = format!("{PROJECTS}/{}", made["id"].as_str().unwrap());

    let (status, renamed) = read(app.post_json(&path, &json!({ "name": "New" })).await).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "New");
    assert_eq!(renamed["external_key_id"], "ekm-1", "left as it was");

    let (status, cleared) = read(
        app.post_json(&path, &json!({ "external_key_id": null }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["external_key_id"], Value::Null);
    assert_eq!(cleared["name"], "New");
    let (_, retrieved) = read(app.get(&path).await).await;
    assert_eq!(retrieved, cleared);

    for (body, why) in [
        (json!({}), "nothing to change"),
        (json!({ "name": "" }), "an empty name"),
    ] {
        assert_error(
            app.post_json(&path, &body).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
    }
}

async fn an_archived_project_is_read_only(app: TestApp) {
    let id = project_id(&app, "Old").await;
    app.clock.advance(5);

    let archived = archive(&app, &id).await;

    let now = admin_api_keys::clock::Clock::now(&app.clock);
    assert_eq!(archived["status"], "archived");
    assert_eq!(archived["archived_at"], now);
    let path = format!("{PROJECTS}/{id}");
    let response = app.post_json(&path, &json!({ "name": "Renamed" })).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "rename archived").await;
    assert_eq!(error["code"], "project_archived");
    let (status, retrieved) = read(app.get(&path).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retrieved["name"], "Old", "{retrieved}");
    assert_eq!(retrieved["status"], "archived");
}

async fn archiving_twice_changes_nothing(app: TestApp) {
    let id = project_id(&app, "p").await;
    let first = archive(&app, &id).await;
    app.clock.advance(60);

    let second = archive(&app, &id).await;

    assert_eq!(second, first, "archived_at keeps the first archiving");
    let (_, log) = read(
        app.get("/v1/organization/audit_logs?event_types[]=project.archived")
            .await,
    )
    .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");
}

async fn unknown_projects_are_404_whatever_the_operation(app: TestApp) {
    for id in [
        "proj_000000000000000000000000",
        "proj_nope",
        "sk-admin-secret",
    ] {
        let path = format!("{PROJECTS}/{id}");
        for (method, path, body) in [
            (Method::GET, path.clone(), None),
            (Method::POST, path.clone(), Some(json!({ "name": "x" }))),
            (Method::POST, format!("{path}/archive"), None),
        ] {
            let response = app
                .send_as(&app.admin_key, method.clone(), &path, body.as_ref())
                .await;
            let error =
                assert_error(response, StatusCode::NOT_FOUND, &format!("{method} {path}")).await;
            assert_eq!(error["param"], "project_id");
            assert!(
                !error["message"].as_str().unwrap().contains("secret"),
                "not repeated: {error}"
            );
        }
    }
}

async fn a_key_without_projects_write_cannot_change_projects(app: TestApp) {
    let id = project_id(&app, "Guarded").await;
    let (_, reader_key) = app.key_for(&app.owner_id, Some(&["projects.read"])).await;

    let response = app
        .send_as(
            &reader_key,
            Method::POST,
            PROJECTS,
            Some(&json!({ "name": "x" })),
        )
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "create").await;
    assert_eq!(error["code"], "missing_scope.projects.write");
    for path in [
        format!("{PROJECTS}/{id}"),
        format!("{PROJECTS}/{id}/archive"),
    ] {
        let response = app
            .send_as(
                &reader_key,
                Method::POST,
                &path,
                Some(&json!({ "name": "x" })),
            )
            .await;
        assert_error(response, StatusCode::FORBIDDEN, &path).await;
    }
    let (status, _) = read(app.send_as(&reader_key, Method::GET, PROJECTS, None).await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, none) = app.key_for(&app.owner_id, Some(&["users.read"])).await;
    let response = app.send_as(&none, Method::GET, PROJECTS, None).await;
    let error = assert_error(
        response,
        StatusCode::FORBIDDEN,
        "list without projects.read",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.projects.read");
    let (_, project) = read(app.get(&format!("{PROJECTS}/{id}")).await).await;
    assert_eq!(project["status"], "active");
    assert_eq!(project["name"], "Guarded");
}

async fn a_readers_key_can_read_projects_but_never_change_them(app: TestApp) {
    let id = project_id(&app, "Guarded").await;
    let reader = app.add_member("reader").await;
    let (_, key) = app.key_for(&reader, None).await;

    let (status, _) = read(
        app.send_as(&key, Method::GET, &format!("{PROJECTS}/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the reader role's ceiling includes projects.read"
    );
    let response = app
        .send_as(
            &key,
            Method::POST,
            &format!("{PROJECTS}/{id}/archive"),
            None,
        )
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "reader archives").await;
    assert_eq!(error["code"], "missing_scope.projects.write");
    // Nor can the reader's key be given projects.write.
    let response = app
        .post_json(
            "/v1/organization/admin_api_keys",
            &json!({ "name": "w", "owner_id": reader, "scopes": ["projects.write"] }),
        )
        .await;
    assert!(response.status().is_client_error());
}

async fn every_project_change_is_in_the_audit_log_with_its_project(app: TestApp) {
    let id = project_id(&app, "Audited").await;
    let other = project_id(&app, "Other").await;
    app.clock.advance(1);
    app.post_json(&format!("{PROJECTS}/{id}"), &json!({ "name": "Renamed" }))
        .await;
    app.clock.advance(1);
    archive(&app, &id).await;

    let (status, log) = read(
        app.get(&format!("/v1/organization/audit_logs?project_ids[]={id}"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log["data"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["project.archived", "project.updated", "project.created"]
    );
    for entry in entries {
        assert_eq!(
            entry["project"],
            json!({ "id": id, "name": "Renamed" }),
            "{entry}"
        );
    }
    assert_eq!(entries[0]["project.archived"], json!({ "id": id }));
    assert_eq!(
        entries[1]["project.updated"],
        json!({ "id": id, "changes_requested": { "title": "Renamed" } })
    );
    assert_eq!(
        entries[2]["project.created"],
        json!({ "id": id, "data": { "name": "Audited" } })
    );
    let (_, other_log) = read(
        app.get(&format!(
            "/v1/organization/audit_logs?project_ids[]={other}"
        ))
        .await,
    )
    .await;
    assert_eq!(other_log["data"].as_array().unwrap().len(), 1);
    let (_, keys_only) = read(
        app.get("/v1/organization/audit_logs?event_types[]=api_key.created")
            .await,
    )
    .await;
    assert!(
        keys_only["data"][0].get("project").is_none(),
        "entries outside projects have no project: {keys_only}"
    );
}

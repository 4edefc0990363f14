//! Project members: OpenAI's `organization.project.user`, added from the organisation's
//! members, re-roled and removed; never changed in an archived project.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, read};
use crate::projects::{PROJECTS, archive, project_id};

backend_tests!(
    a_member_is_added_by_id_or_email_and_can_be_retrieved,
    only_existing_enabled_organisation_members_can_be_added_once,
    a_members_role_can_be_changed_and_they_can_be_removed,
    members_are_listed_in_the_order_they_were_added_and_paged,
    an_archived_projects_members_are_read_only,
    unknown_projects_and_non_members_are_404,
    a_key_without_projects_write_cannot_change_members,
    deleting_a_user_removes_them_from_every_project,
    membership_changes_are_audited_with_their_project,
);

fn users_of(project: &str) -> String {
    format!("{PROJECTS}/{project}/users")
}

async fn add(app: &TestApp, project: &str, user_id: &str, role: &str) -> Value {
    let body = json!({ "user_id": user_id, "role": role });
    let (status, member) = read(app.post_json(&users_of(project), &body).await).await;
    assert_eq!(status, StatusCode::OK, "{member}");
    member
}

async fn a_member_is_added_by_id_or_email_and_can_be_retrieved(app: TestApp) {
    let project = project_id(&app, "p").await;
    let user = app.add_member("reader").await;

    let member = add(&app, &project, &user, "member").await;

    assert_eq!(member["object"], "organization.project.user");
    assert_eq!(member["id"], user.as_str());
    assert_eq!(member["role"], "member");
    assert_eq!(
        member["added_at"],
        admin_api_keys::clock::Clock::now(&app.clock)
    );
    assert!(member["email"].as_str().unwrap().ends_with("@example.com"));
    let (_, org_user) = read(app.get(&format!("/v1/organization/users/{user}")).await).await;
    assert_eq!(member["name"], org_user["name"]);
    let (status, retrieved) = read(app.get(&format!("{}/{user}", users_of(&project))).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retrieved, member);

    let body = json!({ "email": "OWNER@example.com", "role": "owner" });
    let (status, by_email) = read(app.post_json(&users_of(&project), &body).await).await;
    assert_eq!(status, StatusCode::OK, "{by_email}");
    assert_eq!(
        by_email["id"],
        app.owner_id.as_str(),
        "emails compare case-insensitively"
    );
    assert_eq!(by_email["role"], "owner");
}

async fn only_existing_enabled_organisation_members_can_be_added_once(app: TestApp) {
    let project = project_id(&app, "p").await;
    let user = app.add_member("owner").await;
    let disabled = app.add_member("reader").await;
    app.post_json(
        &format!("/v1/organization/users/{disabled}"),
        &json!({ "enabled": false }),
    )
    .await;
    add(&app, &project, &user, "member").await;
    let path = users_of(&project);

    let cases = [
        (
            json!({ "user_id": user, "role": "owner" }),
            StatusCode::CONFLICT,
            "already_member",
        ),
        (
            json!({ "user_id": disabled, "role": "member" }),
            StatusCode::CONFLICT,
            "user_disabled",
        ),
        (
            json!({ "user_id": "user_000000000000000000000000", "role": "member" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({ "email": "nobody@example.com", "role": "member" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (body, status, code) in cases {
        let error =
            assert_error(app.post_json(&path, &body).await, status, &body.to_string()).await;
        assert_eq!(error["code"], code, "{body}");
    }
    for (body, why) in [
        (json!({ "user_id": user }), "no role"),
        (
            json!({ "user_id": user, "role": "reader" }),
            "an organisation role",
        ),
        (json!({ "role": "member" }), "nobody named"),
        (
            json!({ "user_id": user, "email": "owner@example.com", "role": "member" }),
            "both named",
        ),
        (
            json!({ "email": "not an email", "role": "member" }),
            "a malformed email",
        ),
    ] {
        assert_error(
            app.post_json(&path, &body).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
    }
    let (_, page) = read(app.get(&path).await).await;
    assert_eq!(ids(&page), vec![user], "nothing else was added");
}

async fn a_members_role_can_be_changed_and_they_can_be_removed(app: TestApp) {
    let project = project_id(&app, "p").await;
    let user = app.add_member("reader").await;
    add(&app, &project, &user, "member").await;
    let path = format!("{}/{user}", users_of(&project));

    let (status, promoted) = read(app.post_json(&path, &json!({ "role": "owner" })).await).await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(promoted["role"], "owner");
    let (_, retrieved) = read(app.get(&path).await).await;
    assert_eq!(retrieved["role"], "owner");
    assert_error(
        app.post_json(&path, &json!({})).await,
        StatusCode::BAD_REQUEST,
        "no role",
    )
    .await;

    let (status, removed) = read(app.delete(&path).await).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(
        removed,
        json!({ "object": "organization.project.user.deleted", "id": user, "deleted": true })
    );
    assert_error(app.get(&path).await, StatusCode::NOT_FOUND, "gone").await;
    assert_error(
        app.delete(&path).await,
        StatusCode::NOT_FOUND,
        "removed twice",
    )
    .await;
    let (status, _) = read(app.get(&format!("/v1/organization/users/{user}")).await).await;
    assert_eq!(status, StatusCode::OK, "the organisation member stays");
}

async fn members_are_listed_in_the_order_they_were_added_and_paged(app: TestApp) {
    let project = project_id(&app, "p").await;
    let mut added = Vec::new();
    for _ in 0..3 {
        app.clock.advance(1);
        let user = app.add_member("reader").await;
        add(&app, &project, &user, "member").await;
        added.push(user);
    }

    let (_, first) = read(app.get(&format!("{}?limit=2", users_of(&project))).await).await;
    let after = first["last_id"].as_str().unwrap();
    let (_, second) = read(
        app.get(&format!("{}?limit=2&after={after}", users_of(&project)))
            .await,
    )
    .await;

    assert_eq!(ids(&first), added[..2]);
    assert_eq!(first["has_more"], true);
    assert_eq!(ids(&second), added[2..]);
    assert_eq!(second["has_more"], false);
    let response = app
        .get(&format!("{}?after={}", users_of(&project), app.owner_id))
        .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "after a non-member").await;
    assert_eq!(error["param"], "after");
}

async fn an_archived_projects_members_are_read_only(app: TestApp) {
    let project = project_id(&app, "p").await;
    let user = app.add_member("reader").await;
    let other = app.add_member("reader").await;
    add(&app, &project, &user, "member").await;
    archive(&app, &project).await;
    let path = format!("{}/{user}", users_of(&project));

    let attempts = [
        (
            Method::POST,
            users_of(&project),
            Some(json!({ "user_id": other, "role": "member" })),
        ),
        (Method::POST, path.clone(), Some(json!({ "role": "owner" }))),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, path, body) in attempts {
        let response = app
            .send_as(&app.admin_key, method.clone(), &path, body.as_ref())
            .await;
        let error = assert_error(
            response,
            StatusCode::BAD_REQUEST,
            &format!("{method} {path}"),
        )
        .await;
        assert_eq!(error["code"], "project_archived");
    }
    let (status, page) = read(app.get(&users_of(&project)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![user]);
    assert_eq!(page["data"][0]["role"], "member", "unchanged");
}

async fn unknown_projects_and_non_members_are_404(app: TestApp) {
    let project = project_id(&app, "p").await;
    let stranger = app.add_member("reader").await;
    let nowhere = users_of("proj_000000000000000000000000");
    let member_path = format!("{}/{stranger}", users_of(&project));

    let cases = [
        (Method::GET, nowhere.clone(), None, "project_id"),
        (
            Method::POST,
            nowhere.clone(),
            Some(json!({ "user_id": stranger, "role": "member" })),
            "project_id",
        ),
        (
            Method::GET,
            format!("{nowhere}/{stranger}"),
            None,
            "project_id",
        ),
        (Method::GET, member_path.clone(), None, "user_id"),
        (
            Method::POST,
            member_path.clone(),
            Some(json!({ "role": "owner" })),
            "user_id",
        ),
        (Method::DELETE, member_path.clone(), None, "user_id"),
    ];
    for (method, path, body, param) in cases {
        let response = app
            .send_as(&app.admin_key, method.clone(), &path, body.as_ref())
            .await;
        let error =
            assert_error(response, StatusCode::NOT_FOUND, &format!("{method} {path}")).await;
        assert_eq!(error["param"], param, "{method} {path}");
    }
}

async fn a_key_without_projects_write_cannot_change_members(app: TestApp) {
    let project = project_id(&app, "p").await;
    let user = app.add_member("reader").await;
    add(&app, &project, &user, "member").await;
    let (_, key) = app.key_for(&app.owner_id, Some(&["projects.read"])).await;
    let path = format!("{}/{user}", users_of(&project));

    for (method, path, body) in [
        (
            Method::POST,
            users_of(&project),
            Some(json!({ "user_id": app.owner_id, "role": "owner" })),
        ),
        (Method::POST, path.clone(), Some(json!({ "role": "owner" }))),
        (Method::DELETE, path.clone(), None),
    ] {
        let response = app
            .send_as(&key, method.clone(), &path, body.as_ref())
            .await;
        let error =
            assert_error(response, StatusCode::FORBIDDEN, &format!("{method} {path}")).await;
        assert_eq!(error["code"], "missing_scope.projects.write");
    }
    let (status, page) = read(
        app.send_as(&key, Method::GET, &users_of(&project), None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![user]);
    assert_eq!(page["data"][0]["role"], "member");
}

async fn deleting_a_user_removes_them_from_every_project(app: TestApp) {
    let first = project_id(&app, "first").await;
    let second = project_id(&app, "second").await;
    let user = app.add_member("reader").await;
    add(&app, &first, &user, "member").await;
    add(&app, &second, &user, "owner").await;

    let (status, _) = read(app.delete(&format!("/v1/organization/users/{user}")).await).await;

    assert_eq!(status, StatusCode::OK);
    for project in [&first, &second] {
        let (_, page) = read(app.get(&users_of(project)).await).await;
        assert!(ids(&page).is_empty(), "{page}");
        let (_, log) = read(
            app.get(&format!(
                "/v1/organization/audit_logs?project_ids[]={project}&event_types[]=user.deleted"
            ))
            .await,
        )
        .await;
        assert_eq!(
            log["data"][0]["user.deleted"],
            json!({ "id": user }),
            "{log}"
        );
    }
}

async fn membership_changes_are_audited_with_their_project(app: TestApp) {
    let project = project_id(&app, "Audited").await;
    let user = app.add_member("reader").await;
    app.clock.advance(1);
    add(&app, &project, &user, "member").await;
    app.clock.advance(1);
    app.post_json(
        &format!("{}/{user}", users_of(&project)),
        &json!({ "role": "owner" }),
    )
    .await;
    app.clock.advance(1);
    app.delete(&format!("{}/{user}", users_of(&project))).await;

    let (_, log) = read(
        app.get(&format!(
            "/v1/organization/audit_logs?project_ids[]={project}&resource_ids[]={user}"
        ))
        .await,
    )
    .await;

    let entries = log["data"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["user.deleted", "user.updated", "user.added"]);
    assert_eq!(
        entries[2]["user.added"],
        json!({ "id": user, "data": { "role": "member" } })
    );
    assert_eq!(
        entries[1]["user.updated"],
        json!({ "id": user, "changes_requested": { "role": "owner" } })
    );
    for entry in entries {
        assert_eq!(
            entry["project"],
            json!({ "id": project, "name": "Audited" })
        );
    }
}

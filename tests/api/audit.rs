//! The audit log: what is recorded, in OpenAI's shape, with its filters and cursors.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, assert_error, ids, read};

backend_tests!(
    key_changes_are_recorded_newest_first_with_actor_and_details,
    rotation_records_the_new_key_and_the_old_keys_new_expiry,
    filters_narrow_by_type_actor_resource_and_time,
    after_and_before_cursors_page_through_every_entry,
    a_refused_change_writes_no_audit_entry,
    the_audit_log_needs_its_scope_and_cannot_be_altered,
    invalid_audit_queries_are_400s,
);

const KEYS: &str = "/v1/organization/admin_api_keys";
const LOGS: &str = "/v1/organization/audit_logs";

async fn logs(app: &TestApp, query: &str) -> Value {
    let (status, body) = read(app.get(&format!("{LOGS}?{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn types(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn key_changes_are_recorded_newest_first_with_actor_and_details(app: TestApp) {
    app.clock.advance(1);
    let key = app
        .create_key(json!({ "name": "ci", "scopes": ["admin_api_keys.read"] }))
        .await;
    let id = key["id"].as_str().unwrap();
    app.clock.advance(1);
    let update = app
        .request(Method::POST, &format!("{KEYS}/{id}"))
        .json(&json!({ "enabled": false, "name": "ci-2" }));
    assert_eq!(update.send().await.unwrap().status(), StatusCode::OK);
    app.clock.advance(1);
    assert_eq!(
        app.delete(&format!("{KEYS}/{id}")).await.status(),
        StatusCode::OK
    );

    // Bootstrap's `user.added` shares a second with its key's creation; this test is about keys.
    let page = logs(
        &app,
        "event_types[]=api_key.created&event_types[]=api_key.updated&event_types[]=api_key.deleted",
    )
    .await;

    assert_eq!(page["object"], "list");
    assert_eq!(
        types(&page),
        [
            "api_key.deleted",
            "api_key.updated",
            "api_key.created",
            "api_key.created"
        ]
    );
    let [deleted, updated, created, boot] = page["data"].as_array().unwrap().as_slice() else {
        panic!("four entries expected: {page}");
    };
    let actor = json!({
        "type": "api_key",
        "api_key": { "id": app.admin_key_id, "type": "user", "user": { "id": app.owner_id, "email": "owner@example.com" } }
    });
    for entry in [deleted, updated, created] {
        assert_eq!(entry["actor"], actor);
        assert!(entry["id"].as_str().unwrap().starts_with("audit_log-"));
    }
    assert_eq!(created["effective_at"], START + 1);
    assert_eq!(created["api_key.created"]["id"], id);
    assert_eq!(
        created["api_key.created"]["data"]["scopes"],
        json!(["admin_api_keys.read"])
    );
    assert_eq!(updated["effective_at"], START + 2);
    assert_eq!(
        updated["api_key.updated"],
        json!({ "id": id, "changes_requested": { "enabled": false, "name": "ci-2" } })
    );
    assert_eq!(deleted["api_key.deleted"], json!({ "id": id }));
    assert!(deleted.get("api_key.created").is_none(), "{deleted}");
    // Bootstrap acts without a key: a session actor naming the new owner.
    assert_eq!(boot["actor"]["type"], "session");
    assert_eq!(
        boot["actor"]["session"]["user"]["id"],
        app.owner_id.as_str()
    );
    assert_eq!(boot["api_key.created"]["id"], app.admin_key_id.as_str());
}

async fn rotation_records_the_new_key_and_the_old_keys_new_expiry(app: TestApp) {
    let old = app.create_named("deploy").await;
    let old_id = old["id"].as_str().unwrap();
    let response = app
        .request(Method::POST, &format!("{KEYS}/{old_id}/rotate"))
        .json(&json!({ "previous_key_expires_in_seconds": 600 }))
        .send()
        .await
        .unwrap();
    let (_, new) = read(response).await;

    let page = logs(
        &app,
        &format!(
            "resource_ids[]={old_id}&resource_ids[]={}",
            new["id"].as_str().unwrap()
        ),
    )
    .await;

    assert_eq!(
        types(&page)
            .iter()
            .filter(|t| *t == "api_key.created")
            .count(),
        2
    );
    let updated = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "api_key.updated")
        .unwrap();
    assert_eq!(
        updated["api_key.updated"]["changes_requested"]["expires_at"],
        START + 600
    );
    assert_eq!(
        updated["api_key.updated"]["changes_requested"]["rotated_to"],
        new["id"]
    );
}

async fn filters_narrow_by_type_actor_resource_and_time(app: TestApp) {
    let (_, other_value) = {
        let k = app.create_named("other actor").await;
        (
            k["id"].as_str().unwrap().to_owned(),
            k["value"].as_str().unwrap().to_owned(),
        )
    };
    app.clock.advance(10);
    let by_other = app
        .request_as(&other_value, Method::POST, KEYS)
        .json(&json!({ "name": "made by other" }))
        .send()
        .await
        .unwrap();
    let (_, by_other) = read(by_other).await;
    let other_id = app.list("search=other actor").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        types(&logs(&app, "event_types[]=api_key.deleted").await).len(),
        0
    );
    assert_eq!(
        types(
            &logs(
                &app,
                "event_types[]=api_key.created&event_types[]=api_key.deleted"
            )
            .await
        )
        .len(),
        3
    );
    let mine = logs(&app, &format!("actor_ids[]={other_id}")).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["api_key.created"]["id"], by_other["id"]);
    let about = logs(
        &app,
        &format!("resource_ids[]={}", by_other["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(ids(&about), ids(&mine));
    assert_eq!(
        ids(&logs(&app, &format!("effective_at[gte]={}", START + 10)).await),
        ids(&mine)
    );
    assert_eq!(
        logs(&app, &format!("effective_at[lt]={}", START + 10)).await["data"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "bootstrap's user.added and api_key.created, and one more key"
    );
    assert_eq!(
        logs(
            &app,
            &format!(
                "effective_at[gt]={}&effective_at[lte]={}",
                START,
                START + 10
            )
        )
        .await["data"],
        mine["data"]
    );
}

async fn after_and_before_cursors_page_through_every_entry(app: TestApp) {
    for i in 0..6 {
        if i % 2 == 0 {
            app.clock.advance(1);
        }
        app.create_named(&format!("k{i}")).await;
    }
    let all = ids(&logs(&app, "limit=100").await);
    assert_eq!(all.len(), 8, "six keys, and bootstrap's user and key");

    let mut forward = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = logs(&app, &format!("limit=2{cursor}")).await;
        forward.extend(ids(&page));
        if page["has_more"] == false {
            break;
        }
        cursor = format!("&after={}", page["last_id"].as_str().unwrap());
    }
    assert_eq!(forward, all);

    // Back from the oldest entry with `before`: each page is newest first.
    let mut backward = Vec::new();
    let mut cursor = all.last().unwrap().clone();
    loop {
        let page = logs(&app, &format!("limit=2&before={cursor}")).await;
        let mut page_ids = ids(&page);
        page_ids.reverse();
        backward.extend(page_ids);
        if page["has_more"] == false {
            break;
        }
        cursor = page["first_id"].as_str().unwrap().to_owned();
    }
    backward.reverse();
    assert_eq!(backward, all[..all.len() - 1]);
}

async fn a_refused_change_writes_no_audit_entry(app: TestApp) {
    let reader = app
        .create_key(
            json!({ "name": "reader", "scopes": ["admin_api_keys.read", "admin_api_keys.write"] }),
        )
        .await;
    let before = ids(&logs(&app, "limit=100").await);

    let boot = &app.admin_key_id;
    // The reader key is a writer too, so demote it first... no: keep it and try to escalate.
    let refused = [
        (
            app.request_as(reader["value"].as_str().unwrap(), Method::POST, KEYS)
                .json(&json!({ "name": "x", "scopes": ["audit_logs.read"] })),
            StatusCode::FORBIDDEN,
        ),
        (
            app.request(Method::POST, KEYS).json(&json!({ "name": "" })),
            StatusCode::BAD_REQUEST,
        ),
        (
            app.request(Method::POST, &format!("{KEYS}/key_nope"))
                .json(&json!({ "enabled": false })),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (request, status) in refused {
        assert_eq!(request.send().await.unwrap().status(), status);
    }
    // Lock-out: demote the other writer, then try to disable the last one.
    let demote = app
        .request(
            Method::POST,
            &format!("{KEYS}/{}", reader["id"].as_str().unwrap()),
        )
        .json(&json!({ "scopes": ["admin_api_keys.read"] }));
    assert_eq!(demote.send().await.unwrap().status(), StatusCode::OK);
    let after_demote = ids(&logs(&app, "limit=100").await);
    assert_eq!(after_demote.len(), before.len() + 1);
    for request in [
        app.request(Method::POST, &format!("{KEYS}/{boot}"))
            .json(&json!({ "enabled": false })),
        app.request(Method::DELETE, &format!("{KEYS}/{boot}")),
    ] {
        assert_eq!(request.send().await.unwrap().status(), StatusCode::CONFLICT);
        assert_eq!(
            ids(&logs(&app, "limit=100").await),
            after_demote,
            "a refused change left an entry"
        );
    }
}

async fn the_audit_log_needs_its_scope_and_cannot_be_altered(app: TestApp) {
    let keys_only = app
        .create_key(
            json!({ "name": "k", "scopes": ["admin_api_keys.read", "admin_api_keys.write"] }),
        )
        .await;
    let audit_only = app
        .create_key(json!({ "name": "a", "scopes": ["audit_logs.read"] }))
        .await;

    let denied = app
        .request_as(keys_only["value"].as_str().unwrap(), Method::GET, LOGS)
        .send()
        .await
        .unwrap();
    let error = assert_error(denied, StatusCode::FORBIDDEN, "without audit_logs.read").await;
    assert_eq!(error["code"], "missing_scope.audit_logs.read");
    let allowed = app
        .request_as(
            audit_only["value"].as_str().unwrap(),
            Method::GET,
            "/organization/audit_logs",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);

    let entry = logs(&app, "limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (Method::POST, LOGS.to_owned()),
        (Method::DELETE, LOGS.to_owned()),
        (Method::PUT, LOGS.to_owned()),
    ] {
        let response = app
            .request(method.clone(), &path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path}"),
        )
        .await;
    }
    let response = app
        .request(Method::DELETE, &format!("{LOGS}/{entry}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "DELETE one entry").await;
    assert!(ids(&logs(&app, "limit=100").await).contains(&entry));
}

async fn invalid_audit_queries_are_400s(app: TestApp) {
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("effective_at[gt]=soon", "effective_at[gt]"),
        ("after=audit_log-nope", "after"),
        ("before=audit_log-nope", "before"),
        ("project_ids[]=proj_1", "project_ids[]"),
        ("tenant_only=", "tenant_only"),
        ("actor_emails[]=a@b.c", "actor_emails[]"),
        ("after=%00", "after"),
        ("actor_ids[]=key_%00", "actor_ids[]"),
        ("event_types[]=api_key.created%0A", "event_types[]"),
    ];
    for (query, param) in cases {
        let response = app.get(&format!("{LOGS}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
    let first = logs(&app, "").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let both = app
        .get(&format!("{LOGS}?after={first}&before={first}"))
        .await;
    assert_error(both, StatusCode::BAD_REQUEST, "after and before").await;
}

//! `/organization/users`: the user object, listing (pages, ties, the `emails[]` filter),
//! changes and their validation, disabling, deleting (with the user's keys), and keys made
//! for another user (`owner_id`) with the `owner_id` filters of the keys list and audit log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{NewUser, START, TestApp, assert_error, ids, read};

backend_tests!(
    a_user_is_shown_in_the_upstream_shape_with_and_without_v1,
    unknown_users_are_404_on_every_operation,
    the_list_pages_through_users_added_in_the_same_second_without_skip_or_repeat,
    the_list_rejects_invalid_paging_parameters,
    the_emails_filter_ignores_case_and_rejects_invalid_addresses,
    invalid_changes_are_refused_and_change_nothing,
    a_change_sets_only_the_fields_sent_and_is_audited,
    disabling_a_user_rejects_all_their_keys_on_the_next_request_until_enabled,
    deleting_a_user_deletes_their_keys_in_the_same_change,
    a_key_for_another_user_follows_the_owner_id_rules,
    keys_and_audit_entries_filter_on_owner_id,
);

const USERS: &str = "/v1/organization/users";
const KEYS: &str = "/v1/organization/admin_api_keys";

fn user_path(id: &str) -> String {
    format!("{USERS}/{id}")
}

/// `POST /v1/organization/users/{id}` with the bootstrap key.
async fn modify(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.post_json(&user_path(id), &body).await
}

/// The user `id` as retrieved with the bootstrap key (asserting 200).
async fn user(app: &TestApp, id: &str) -> Value {
    let (status, body) = read(app.get(&user_path(id)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Every entry of the audit log matching `query`, newest first.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = read(
        app.get(&format!("/v1/organization/audit_logs?limit=100&{query}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// Status and error code of a request made with `key`.
async fn outcome(app: &TestApp, key: &str, method: Method, path: &str) -> (u16, Value) {
    let (status, body) = read(app.send_as(key, method, path, None).await).await;
    (status.as_u16(), body["error"]["code"].clone())
}

async fn a_user_is_shown_in_the_upstream_shape_with_and_without_v1(app: TestApp) {
    let expected = json!({
        "object": "organization.user",
        "id": app.owner_id,
        "name": "Test Owner",
        "email": "owner@example.com",
        "role": "owner",
        "added_at": START,
        "enabled": true,
        "permissions": ["*"],
        "first_name": null,
        "last_name": null,
        "phone_number": null,
    });
    for prefix in ["/v1", ""] {
        let path = format!("{prefix}/organization/users/{}", app.owner_id);
        let (status, body) = read(app.get(&path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body, expected, "{path}");

        let (status, page) = read(app.get(&format!("{prefix}/organization/users")).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["object"], "list");
        assert_eq!(page["data"], json!([expected]), "{prefix}");
        assert_eq!(page["first_id"], app.owner_id.as_str());
        assert_eq!(page["last_id"], app.owner_id.as_str());
        assert_eq!(page["has_more"], false);
    }
}

async fn unknown_users_are_404_on_every_operation(app: TestApp) {
    let missing = admin_api_keys::ids::random_id(admin_api_keys::ids::USER);
    let path = user_path(&missing);
    let cases = [
        ("retrieve", app.get(&path).await),
        (
            "modify",
            modify(&app, &missing, json!({ "name": "x" })).await,
        ),
        ("delete", app.delete(&path).await),
        (
            "retrieve, not our shape",
            app.get(&user_path("nobody")).await,
        ),
    ];
    for (what, response) in cases {
        let error = assert_error(response, StatusCode::NOT_FOUND, what).await;
        assert_eq!(error["param"], "user_id", "{what}");
    }
}

async fn the_list_pages_through_users_added_in_the_same_second_without_skip_or_repeat(
    app: TestApp,
) {
    // Seven users who joined in the same second, plus one later and the bootstrap owner.
    let mut same_second = Vec::new();
    for n in 0..7 {
        let id = app
            .add_user(NewUser {
                name: &format!("tied {n}"),
                email: &format!("tied{n}@example.com"),
                role: "reader",
                created_at: START + 10,
            })
            .await;
        same_second.push(id);
    }
    let later = app
        .add_user(NewUser {
            name: "later",
            email: "later@example.com",
            role: "reader",
            created_at: START + 11,
        })
        .await;
    same_second.sort();
    let mut expected = vec![app.owner_id.clone()];
    expected.extend(same_second);
    expected.push(later);

    let (_, all) = read(app.get(&format!("{USERS}?limit=100")).await).await;
    assert_eq!(ids(&all), expected, "oldest first, ties by id");
    let (_, default) = read(app.get(USERS).await).await;
    assert_eq!(
        ids(&default),
        expected,
        "the default page (20) holds all nine"
    );

    for limit in 1..=4 {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let query = match &after {
                None => format!("limit={limit}"),
                Some(id) => format!("limit={limit}&after={id}"),
            };
            let (status, page) = read(app.get(&format!("{USERS}?{query}")).await).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let page_ids = ids(&page);
            assert!(page_ids.len() <= limit, "limit={limit}: {page}");
            seen.extend(page_ids.clone());
            let has_more = page["has_more"].as_bool().unwrap();
            assert_eq!(
                has_more,
                seen.len() < expected.len(),
                "limit={limit}: has_more after {} of {}",
                seen.len(),
                expected.len()
            );
            if !has_more {
                break;
            }
            assert_eq!(page["last_id"], page_ids.last().unwrap().as_str());
            after = Some(page_ids.last().unwrap().clone());
        }
        assert_eq!(seen, expected, "limit={limit}: no user skipped or repeated");
    }
}

async fn the_list_rejects_invalid_paging_parameters(app: TestApp) {
    let unknown = admin_api_keys::ids::random_id(admin_api_keys::ids::USER);
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        (&format!("after={unknown}") as &str, "after"),
        ("after=not%20an%20id", "after"),
        ("order=desc", "order"),
    ];
    for (query, param) in cases {
        let response = app.get(&format!("{USERS}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
    for limit in [1, 100] {
        let (status, _) = read(app.get(&format!("{USERS}?limit={limit}")).await).await;
        assert_eq!(status, StatusCode::OK, "limit={limit} is in bounds");
    }
}

async fn the_emails_filter_ignores_case_and_rejects_invalid_addresses(app: TestApp) {
    let ada = app
        .add_user(NewUser {
            name: "Ada",
            email: "ada@example.com",
            role: "reader",
            created_at: START + 1,
        })
        .await;
    let bob = app
        .add_user(NewUser {
            name: "Bob",
            email: "bob@example.org",
            role: "owner",
            created_at: START + 2,
        })
        .await;
    let cases: [(&str, Vec<&str>); 6] = [
        ("emails[]=ADA@Example.COM", vec![&ada]),
        (
            "emails[]=bob@EXAMPLE.org&emails[]=ada@example.com",
            vec![&ada, &bob],
        ),
        ("emails=Bob@Example.Org", vec![&bob]),
        ("emails[]=owner@example.com", vec![&app.owner_id]),
        ("emails[]=nobody@example.com", vec![]),
        ("emails[]=ada@example.com&limit=1", vec![&ada]),
    ];
    for (query, expected) in cases {
        let (status, page) = read(app.get(&format!("{USERS}?{query}")).await).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(ids(&page), expected, "{query}");
        assert_eq!(page["has_more"], false, "{query}");
    }
    for query in [
        "emails[]=not-an-email",
        "emails[]=ada@example.com&emails[]=%40example.com",
        "emails=two%40at%40example.com",
    ] {
        let response = app.get(&format!("{USERS}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], "emails[]", "{query}");
    }
}

async fn invalid_changes_are_refused_and_change_nothing(app: TestApp) {
    let id = app.add_member("reader").await;
    let before = user(&app, &id).await;
    let cases = [
        (json!({ "role": "member" }), Some("role")),
        (json!({ "role": "OWNER" }), Some("role")),
        (json!({ "role": 1 }), Some("role")),
        (json!({ "role_id": "role-abc" }), Some("role_id")),
        (
            json!({ "technical_level": "expert", "name": "x" }),
            Some("technical_level"),
        ),
        (
            json!({ "developer_persona": "builder" }),
            Some("developer_persona"),
        ),
        (json!({ "enabled": "no" }), Some("enabled")),
        (json!({ "enabled": null }), Some("enabled")),
        (json!({ "name": "" }), Some("name")),
        (json!({ "name": null }), Some("name")),
        (
            json!({ "name": "x", "email": "new@example.com" }),
            Some("email"),
        ),
        (json!({}), None),
        (json!({ "role_id": null, "technical_level": null }), None),
        (json!({ "role": null }), None),
        (json!(["role", "owner"]), None),
    ];
    for (body, param) in cases {
        let response = modify(&app, &id, body.clone()).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], json!(param), "{body}: {error}");
    }
    // An empty body and one that is not JSON.
    for raw in ["", "   ", "{\"role\": "] {
        let response = app
            .request(Method::POST, &user_path(&id))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, &format!("{raw:?}")).await;
    }
    assert_eq!(
        user(&app, &id).await,
        before,
        "no refused change took effect"
    );
    assert!(
        audit(&app, "event_types[]=user.updated").await.is_empty(),
        "refused changes are not audited"
    );

    // The upstream fields are accepted as null next to a real change.
    let response = modify(
        &app,
        &id,
        json!({ "role": "owner", "role_id": null, "technical_level": null, "developer_persona": null }),
    )
    .await;
    let (status, changed) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "owner");
}

async fn a_change_sets_only_the_fields_sent_and_is_audited(app: TestApp) {
    let id = app.add_member("reader").await;
    let before = user(&app, &id).await;

    app.clock.advance(1);
    let (status, renamed) = read(modify(&app, &id, json!({ "name": "  Grace  " })).await).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let mut expected = before.clone();
    expected["name"] = json!("Grace");
    assert_eq!(renamed, expected, "only the name changed");
    assert_eq!(user(&app, &id).await, expected, "as stored");

    app.clock.advance(1);
    let (status, promoted) = read(
        app.request(Method::POST, &format!("/organization/users/{id}"))
            .json(&json!({ "role": "owner", "enabled": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    expected["role"] = json!("owner");
    expected["permissions"] = json!(["*"]);
    assert_eq!(
        promoted, expected,
        "unprefixed path; role changed, name kept"
    );

    let entries = audit(&app, "event_types[]=user.updated").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    let actor = json!({
        "type": "api_key",
        "api_key": { "id": app.admin_key_id, "type": "user", "user": { "id": app.owner_id, "email": "owner@example.com" }, "ip_address": "127.0.0.1" }
    });
    assert_eq!(entries[0]["type"], "user.updated");
    assert_eq!(entries[0]["effective_at"], START + 2);
    assert_eq!(entries[0]["actor"], actor);
    assert_eq!(
        entries[0]["user.updated"],
        json!({ "id": id, "changes_requested": { "role": "owner", "enabled": true, "permissions": ["*"] } })
    );
    assert_eq!(entries[1]["effective_at"], START + 1);
    assert_eq!(
        entries[1]["user.updated"],
        json!({ "id": id, "changes_requested": { "name": "Grace" } })
    );
    let by_resource = audit(&app, &format!("resource_ids[]={id}")).await;
    assert_eq!(by_resource.len(), 2, "both entries are about the user");
}

async fn disabling_a_user_rejects_all_their_keys_on_the_next_request_until_enabled(app: TestApp) {
    let id = app.add_member("owner").await;
    let (_, first) = app.key_for(&id, None).await;
    let (_, second) = app
        .key_for(&id, Some(&["admin_api_keys.read", "users.read"]))
        .await;
    let routes = [
        (Method::GET, USERS.to_owned()),
        (Method::GET, KEYS.to_owned()),
        (Method::GET, user_path(&id)),
    ];
    // Both keys work and are cached.
    for key in [&first, &second] {
        for (method, path) in &routes {
            assert_eq!(outcome(&app, key, method.clone(), path).await.0, 200);
        }
    }

    let (status, disabled) = read(modify(&app, &id, json!({ "enabled": false })).await).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["enabled"], false);
    for key in [&first, &second] {
        for (method, path) in &routes {
            let response = app.send_as(key, method.clone(), path, None).await;
            let error = assert_error(response, StatusCode::UNAUTHORIZED, path).await;
            assert_eq!(error["code"], "user_disabled", "{path}");
        }
    }
    // A write answers 401 too, before its body is looked at.
    let response = app
        .send_as(&first, Method::POST, KEYS, Some(&json!({ "name": "x" })))
        .await;
    let error = assert_error(response, StatusCode::UNAUTHORIZED, "create").await;
    assert_eq!(error["code"], "user_disabled");
    // Their keys stay enabled themselves; the user is what is off.
    let page = app.list(&format!("owner_id={id}")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["enabled"] == true)
    );
    // No new key for a disabled user.
    let response = app
        .post_json(
            KEYS,
            &json!({ "name": "for a disabled user", "owner_id": id }),
        )
        .await;
    let error = assert_error(response, StatusCode::CONFLICT, "create for disabled").await;
    assert_eq!(error["code"], "user_disabled");
    // The bootstrap key is not affected.
    assert_eq!(
        outcome(&app, &app.admin_key, Method::GET, USERS).await.0,
        200
    );

    let (status, enabled) = read(modify(&app, &id, json!({ "enabled": true })).await).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    for key in [&first, &second] {
        for (method, path) in &routes {
            assert_eq!(
                outcome(&app, key, method.clone(), path).await.0,
                200,
                "{path} after re-enabling"
            );
        }
    }
    let made = app
        .send_as(&first, Method::POST, KEYS, Some(&json!({ "name": "back" })))
        .await;
    assert_eq!(made.status(), StatusCode::OK);
}

async fn deleting_a_user_deletes_their_keys_in_the_same_change(app: TestApp) {
    let id = app.add_member("owner").await;
    let (first_id, first) = app.key_for(&id, None).await;
    let (second_id, second) = app.key_for(&id, Some(&["users.read"])).await;
    let other = app.add_member("reader").await;
    let (other_key_id, other_key) = app.key_for(&other, None).await;
    // Cached on this replica.
    for key in [&first, &second, &other_key] {
        assert_eq!(outcome(&app, key, Method::GET, USERS).await.0, 200);
    }
    app.clock.advance(5);

    let (status, deleted) = read(app.delete(&user_path(&id)).await).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({ "object": "organization.user.deleted", "id": id, "deleted": true })
    );
    for key in [&first, &second] {
        let response = app.send_as(key, Method::GET, USERS, None).await;
        let error = assert_error(response, StatusCode::UNAUTHORIZED, "deleted user's key").await;
        assert_eq!(error["code"], "invalid_api_key");
    }
    assert_eq!(
        outcome(&app, &other_key, Method::GET, USERS).await.0,
        200,
        "another user's key still works"
    );
    let response = app.get(&user_path(&id)).await;
    assert_error(response, StatusCode::NOT_FOUND, "deleted user").await;
    for key_id in [&first_id, &second_id] {
        let response = app.get(&format!("{KEYS}/{key_id}")).await;
        assert_error(response, StatusCode::NOT_FOUND, "deleted key").await;
    }
    let listed = ids(&app.list("limit=100").await);
    assert!(
        !listed.contains(&first_id) && !listed.contains(&second_id),
        "{listed:?}"
    );
    assert!(listed.contains(&other_key_id));
    assert!(ids(&app.list(&format!("owner_id={id}")).await).is_empty());
    let (_, users) = read(app.get(USERS).await).await;
    let mut remaining = vec![app.owner_id.clone(), other.clone()];
    remaining.sort(); // Both joined at START: ties go by id.
    assert_eq!(ids(&users), remaining);

    // One entry per key and one for the user, at the moment of the delete, by the same actor.
    let entries = audit(&app, &format!("effective_at[gte]={}", START + 5)).await;
    let mut kinds: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let kind = e["type"].as_str().unwrap().to_owned();
            (kind.clone(), e[&kind]["id"].as_str().unwrap().to_owned())
        })
        .collect();
    kinds.sort();
    let mut expected = vec![
        ("api_key.deleted".to_owned(), first_id.clone()),
        ("api_key.deleted".to_owned(), second_id.clone()),
        ("user.deleted".to_owned(), id.clone()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    for entry in &entries {
        assert_eq!(entry["effective_at"], START + 5);
        assert_eq!(entry["actor"]["api_key"]["id"], app.admin_key_id.as_str());
    }

    let again = app.delete(&user_path(&id)).await;
    assert_error(again, StatusCode::NOT_FOUND, "deleted twice").await;
}

async fn a_key_for_another_user_follows_the_owner_id_rules(app: TestApp) {
    let owner = app.add_member("owner").await;
    let reader = app.add_member("reader").await;

    // Without owner_id (or with one's own), the key is the caller's owner's.
    let own = app.create_key(json!({ "name": "mine" })).await;
    assert_eq!(own["owner"]["id"], app.owner_id.as_str());
    let own = app
        .create_key(json!({ "name": "mine too", "owner_id": app.owner_id }))
        .await;
    assert_eq!(own["owner"]["id"], app.owner_id.as_str());

    // For an owner, the caller's scopes by default; for a reader, those within their role.
    let for_owner = app
        .create_key(json!({ "name": "for owner", "owner_id": owner }))
        .await;
    assert_eq!(for_owner["owner"]["id"], owner.as_str());
    assert_eq!(for_owner["owner"]["role"], "owner");
    assert_eq!(for_owner["scopes"], own["scopes"]);
    let for_reader = app
        .create_key(json!({ "name": "for reader", "owner_id": reader }))
        .await;
    assert_eq!(for_reader["owner"]["role"], "reader");
    assert_eq!(
        for_reader["scopes"],
        json!([
            "admin_api_keys.read",
            "audit_logs.read",
            "keys.introspect",
            "projects.read",
            "users.read"
        ])
    );
    // The new key works for its owner.
    let value = for_reader["value"].as_str().unwrap();
    assert_eq!(outcome(&app, value, Method::GET, USERS).await.0, 200);

    // Scopes beyond the target's role.
    for scopes in [
        json!(["admin_api_keys.write"]),
        json!(["users.read", "users.write"]),
    ] {
        let response = app
            .post_json(
                KEYS,
                &json!({ "name": "too much", "owner_id": reader, "scopes": scopes }),
            )
            .await;
        let error = assert_error(response, StatusCode::FORBIDDEN, &scopes.to_string()).await;
        assert_eq!(error["code"], "scope_exceeds_role", "{scopes}");
    }

    // A caller with admin_api_keys.write but not users.write makes keys only for itself.
    let (_, no_users_write) = app
        .key_for(&app.owner_id, Some(&["admin_api_keys.write", "users.read"]))
        .await;
    let body = json!({ "name": "for someone", "owner_id": owner, "scopes": ["users.read"] });
    let response = app
        .send_as(&no_users_write, Method::POST, KEYS, Some(&body))
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "without users.write").await;
    assert_eq!(error["code"], "missing_scope.users.write");
    let response = app
        .send_as(
            &no_users_write,
            Method::POST,
            KEYS,
            Some(&json!({ "name": "self" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "for itself it may");

    // Scopes the caller does not hold cannot be given to anyone.
    let (_, narrow) = app
        .key_for(
            &app.owner_id,
            Some(&["admin_api_keys.write", "users.write"]),
        )
        .await;
    let body = json!({ "name": "escalate", "owner_id": owner, "scopes": ["audit_logs.read"] });
    let response = app.send_as(&narrow, Method::POST, KEYS, Some(&body)).await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "escalation").await;
    assert_eq!(error["code"], "missing_scope.audit_logs.read");

    // Unknown users, malformed ids, and a disabled user.
    let unknown = admin_api_keys::ids::random_id(admin_api_keys::ids::USER);
    for owner_id in [unknown.as_str(), "user_nope"] {
        let response = app
            .post_json(KEYS, &json!({ "name": "ghost", "owner_id": owner_id }))
            .await;
        let error = assert_error(response, StatusCode::NOT_FOUND, owner_id).await;
        assert_eq!(error["param"], "owner_id", "{owner_id}: {error}");
    }
    for owner_id in [json!(null), json!(7), json!([owner])] {
        let response = app
            .post_json(KEYS, &json!({ "name": "bad", "owner_id": owner_id }))
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &owner_id.to_string()).await;
        assert_eq!(error["param"], "owner_id", "{owner_id}");
    }
    let response = modify(&app, &owner, json!({ "enabled": false })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let before = app.list("limit=100").await["data"]
        .as_array()
        .unwrap()
        .len();
    let response = app
        .post_json(KEYS, &json!({ "name": "for disabled", "owner_id": owner }))
        .await;
    let error = assert_error(response, StatusCode::CONFLICT, "disabled owner").await;
    assert_eq!(error["code"], "user_disabled");
    assert_eq!(
        app.list("limit=100").await["data"]
            .as_array()
            .unwrap()
            .len(),
        before,
        "no key was made by any refused create"
    );
}

async fn keys_and_audit_entries_filter_on_owner_id(app: TestApp) {
    let alice = app.add_member("owner").await;
    let bob = app.add_member("reader").await;
    let (alice_key_id, alice_key) = app.key_for(&alice, None).await;
    let (bob_key_id, _) = app.key_for(&bob, None).await;
    // Alice's key makes a key of its own (for Alice) and changes Bob.
    app.clock.advance(1);
    let made = app
        .send_as(
            &alice_key,
            Method::POST,
            KEYS,
            Some(&json!({ "name": "alice's own" })),
        )
        .await;
    let (status, made) = read(made).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let made_id = made["id"].as_str().unwrap().to_owned();
    app.clock.advance(1);
    let renamed = app
        .send_as(
            &alice_key,
            Method::POST,
            &user_path(&bob),
            Some(&json!({ "name": "Robert" })),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);

    let mut alices = ids(&app.list(&format!("owner_id={alice}")).await);
    alices.sort();
    let mut expected = vec![alice_key_id.clone(), made_id.clone()];
    expected.sort();
    assert_eq!(alices, expected);
    assert_eq!(
        ids(&app.list(&format!("owner_id={bob}")).await),
        vec![bob_key_id]
    );
    let mine = ids(&app.list(&format!("owner_id={}", app.owner_id)).await);
    assert_eq!(mine, vec![app.admin_key_id.clone()]);
    let unknown = admin_api_keys::ids::random_id(admin_api_keys::ids::USER);
    assert!(ids(&app.list(&format!("owner_id={unknown}")).await).is_empty());
    // It combines with the other filters.
    assert_eq!(
        ids(&app.list(&format!("owner_id={alice}&search=alice's")).await),
        vec![made_id.clone()]
    );

    // The audit log's owner_id is the user behind the actor: Alice's key made two entries.
    let entries = audit(&app, &format!("owner_id={alice}")).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user.updated", "api_key.created"], "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["actor"]["api_key"]["id"], alice_key_id.as_str());
        assert_eq!(entry["actor"]["api_key"]["user"]["id"], alice.as_str());
    }
    assert!(audit(&app, &format!("owner_id={bob}")).await.is_empty());
    let by_bootstrap = audit(&app, &format!("owner_id={}", app.owner_id)).await;
    let actor_user = |e: &Value| {
        let actor = &e["actor"];
        actor["api_key"]["user"]["id"]
            .as_str()
            .or(actor["session"]["user"]["id"].as_str())
            .unwrap()
            .to_owned()
    };
    assert!(
        by_bootstrap.iter().all(|e| actor_user(e) == app.owner_id),
        "{by_bootstrap:?}"
    );
    let created: Vec<&str> = by_bootstrap
        .iter()
        .filter(|e| e["type"] == "api_key.created")
        .map(|e| e["api_key.created"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        created.len(),
        3,
        "the bootstrap key, then Alice's and Bob's keys"
    );
    assert!(created.contains(&alice_key_id.as_str()));
    assert!(
        !created.contains(&made_id.as_str()),
        "Alice's key made that one"
    );

    for query in [
        "owner_id=alice",
        "owner_id=key_aaaaaaaaaaaaaaaaaaaaaaaa",
        "owner_id=user_short",
        &format!("owner_id={alice}&owner_id={bob}"),
    ] {
        let response = app.get(&format!("{KEYS}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], "owner_id", "keys: {query}");
        let response = app
            .get(&format!("/v1/organization/audit_logs?{query}"))
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], "owner_id", "audit: {query}");
    }
}

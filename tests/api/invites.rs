//! Invites: making, listing, retrieving and withdrawing them with an admin key, and accepting
//! one with its token alone, which makes a member and their first key.

use std::collections::HashSet;

use admin_api_keys::config::{DEFAULT_INVITE_TTL_SECS, Settings};
use admin_api_keys::domain::secret::{generate_invite_token, is_well_formed_invite_token};
use admin_api_keys::domain::{Email, KeyName};
use admin_api_keys::services::bootstrap::create_owner_with_key;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, assert_error, ids, read};

backend_tests!(
    create_returns_the_invite_and_its_token_this_once,
    retrieve_and_list_show_invites_without_their_token,
    retrieve_and_delete_answer_404_for_unknown_ids,
    accepting_makes_a_reader_whose_key_holds_exactly_the_read_scopes,
    accepting_an_owner_invite_gives_a_key_with_every_scope,
    accept_needs_no_admin_key_and_is_served_with_and_without_v1,
    every_unusable_token_gets_the_same_refusal,
    an_invite_expires_after_the_ttl_and_no_longer_blocks_its_email,
    emails_of_members_and_pending_invites_are_taken_whatever_their_case,
    accept_refuses_an_email_a_member_took_in_the_meantime,
    delete_withdraws_pending_and_expired_invites_but_not_accepted_ones,
    invalid_invite_bodies_are_400s_naming_the_field,
    invalid_accept_bodies_are_400s_naming_the_field,
    invites_need_their_scopes_before_the_body_is_read,
    inviting_needs_every_scope_the_invitees_key_will_hold,
    paging_through_invites_made_in_the_same_second_neither_skips_nor_repeats,
    invalid_list_queries_are_400s,
    invite_changes_are_audited_with_the_right_actors,
);

mod short_ttl {
    use super::*;

    backend_tests!(settings = short_ttl; invites_live_as_long_as_the_configured_ttl);
}

const INVITES: &str = "/v1/organization/invites";
const ACCEPT: &str = "/v1/organization/invites/accept";
const USERS: &str = "/v1/organization/users";
const KEYS: &str = "/v1/organization/admin_api_keys";
const LOGS: &str = "/v1/organization/audit_logs";
const TTL: i64 = DEFAULT_INVITE_TTL_SECS as i64;

/// Makes an invite with the bootstrapped key; returns the create response (asserting 200).
async fn invite(app: &TestApp, email: &str, role: &str) -> Value {
    let response = app
        .post_json(INVITES, &json!({ "email": email, "role": role }))
        .await;
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "invite failed: {body}");
    body
}

/// `POST /v1/organization/invites/accept` without any key.
async fn accept(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.client
        .post(app.url(ACCEPT))
        .json(&json!({ "token": token, "name": name }))
        .send()
        .await
        .expect("request sent")
}

/// Accepts `token` (asserting 200); returns the response body.
async fn accepted(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, body) = read(accept(app, token, name).await).await;
    assert_eq!(status, StatusCode::OK, "accept failed: {body}");
    body
}

fn token_of(created: &Value) -> String {
    created["accept_token"]
        .as_str()
        .expect("an accept token")
        .to_owned()
}

fn id_of(object: &Value) -> String {
    object["id"].as_str().expect("an id").to_owned()
}

/// The value of a new key of the bootstrapped owner holding `scopes`.
async fn key_with(app: &TestApp, scopes: &[&str]) -> String {
    let made = app
        .create_key(json!({ "name": "scoped", "scopes": scopes }))
        .await;
    made["value"].as_str().unwrap().to_owned()
}

async fn get_invite(app: &TestApp, id: &str) -> Value {
    let (status, body) = read(app.get(&format!("{INVITES}/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn list_invites(app: &TestApp, query: &str) -> Value {
    let (status, body) = read(app.get(&format!("{INVITES}?{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn create_returns_the_invite_and_its_token_this_once(app: TestApp) {
    let created = invite(&app, "  Grace.Hopper@Example.COM ", "reader").await;

    let fields: HashSet<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "object",
        "id",
        "email",
        "role",
        "status",
        "created_at",
        "expires_at",
        "accepted_at",
        "projects",
        "accept_token",
        "first_name",
        "last_name",
        "phone_number",
    ]
    .into();
    assert_eq!(fields, expected, "{created}");
    assert_eq!(created["object"], "organization.invite");
    let id = id_of(&created);
    let random = id.strip_prefix("invite-").expect("an invite- id");
    assert!(
        random.len() == 24 && random.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(created["email"], "grace.hopper@example.com");
    assert_eq!(created["role"], "reader");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["created_at"], START);
    assert_eq!(created["expires_at"], START + TTL);
    assert_eq!(created["accepted_at"], Value::Null);
    assert_eq!(created["projects"], json!([]));
    assert!(
        is_well_formed_invite_token(&token_of(&created)),
        "{created}"
    );

    // The unprefixed route makes invites too, each with its own token.
    let response = app
        .request(Method::POST, "/organization/invites")
        .json(&json!({ "email": "ada@example.com", "role": "owner", "projects": [] }))
        .send()
        .await
        .unwrap();
    let (status, other) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(other["role"], "owner");
    assert_ne!(token_of(&other), token_of(&created));
    let with_null = app
        .post_json(
            INVITES,
            &json!({ "email": "alan@example.com", "role": "reader", "projects": null }),
        )
        .await;
    assert_eq!(with_null.status(), StatusCode::OK);
}

async fn retrieve_and_list_show_invites_without_their_token(app: TestApp) {
    let created = invite(&app, "grace@example.com", "owner").await;
    let token = token_of(&created);
    let id = id_of(&created);
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("accept_token");

    let retrieved = get_invite(&app, &id).await;
    let (status, unprefixed) = read(app.get(&format!("/organization/invites/{id}")).await).await;
    let page = list_invites(&app, "").await;

    assert_eq!(retrieved, shown);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unprefixed, shown);
    assert_eq!(page["object"], "list");
    assert_eq!(page["data"], json!([shown]));
    assert_eq!(page["first_id"], id.as_str());
    assert_eq!(page["last_id"], id.as_str());
    assert_eq!(page["has_more"], false);
    for body in [&retrieved, &page] {
        assert!(!body.to_string().contains(&token), "{body}");
    }
}

async fn retrieve_and_delete_answer_404_for_unknown_ids(app: TestApp) {
    let ours = "invite-AAAAAAAAAAAAAAAAAAAAAAAA";
    let secret = generate_invite_token().expose().to_owned();

    for (method, path) in [(Method::GET, ours), (Method::DELETE, ours)] {
        let response = app
            .request(method.clone(), &format!("{INVITES}/{path}"))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::NOT_FOUND, "our shape").await;
        assert_eq!(error["param"], "invite_id");
        assert!(error["message"].as_str().unwrap().contains(ours), "{error}");
    }
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .request(method, &format!("{INVITES}/{secret}"))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::NOT_FOUND, "a secret as id").await;
        assert!(!error.to_string().contains(&secret[10..30]), "{error}");
    }
}

async fn accepting_makes_a_reader_whose_key_holds_exactly_the_read_scopes(app: TestApp) {
    let created = invite(&app, "Grace@Example.com", "reader").await;
    app.clock.advance(5);

    let body = accepted(&app, &token_of(&created), "  Grace Hopper ").await;

    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 2, "{body}");
    let user = &body["user"];
    assert_eq!(user["object"], "organization.user");
    assert!(id_of(user).starts_with("user_"));
    assert_eq!(user["name"], "Grace Hopper");
    assert_eq!(user["email"], "grace@example.com");
    assert_eq!(user["role"], "reader");
    assert_eq!(user["added_at"], START + 5);
    assert_eq!(user["enabled"], true);
    let key = &body["api_key"];
    assert_eq!(key["object"], "organization.admin_api_key");
    assert_eq!(key["owner"]["id"], user["id"]);
    assert_eq!(key["owner"]["role"], "reader");
    assert_eq!(key["expires_at"], Value::Null);
    assert_eq!(
        key["scopes"],
        json!([
            "admin_api_keys.read",
            "audit_logs.read",
            "keys.introspect",
            "projects.read",
            "users.read"
        ])
    );
    let value = key["value"].as_str().expect("the key's value").to_owned();

    // The member is listed; the invite shows its acceptance.
    let (_, users) = read(
        app.get(&format!("{USERS}?emails[]=grace@example.com"))
            .await,
    )
    .await;
    assert_eq!(users["data"], json!([user]));
    let shown = get_invite(&app, &id_of(&created)).await;
    assert_eq!(shown["status"], "accepted");
    assert_eq!(shown["accepted_at"], START + 5);

    // The key works, for reading only, and its value is never shown again.
    let own = app
        .request_as(&value, Method::GET, &format!("{KEYS}/{}", id_of(key)))
        .send()
        .await
        .unwrap();
    let (status, retrieved) = read(own).await;
    assert_eq!(status, StatusCode::OK, "{retrieved}");
    assert!(retrieved.get("value").is_none(), "{retrieved}");
    assert!(!retrieved.to_string().contains(&value));
    let write = app
        .request_as(&value, Method::POST, KEYS)
        .json(&json!({ "name": "more" }))
        .send()
        .await
        .unwrap();
    let error = assert_error(write, StatusCode::FORBIDDEN, "a reader's key creates").await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.write");
    let invites = app
        .request_as(&value, Method::POST, INVITES)
        .json(&json!({ "email": "x@example.com", "role": "reader" }))
        .send()
        .await
        .unwrap();
    assert_error(invites, StatusCode::FORBIDDEN, "a reader's key invites").await;
}

async fn accepting_an_owner_invite_gives_a_key_with_every_scope(app: TestApp) {
    let created = invite(&app, "ada@example.com", "owner").await;

    let body = accepted(&app, &token_of(&created), "Ada").await;

    assert_eq!(body["user"]["role"], "owner");
    assert_eq!(
        body["api_key"]["scopes"],
        json!([
            "admin_api_keys.read",
            "admin_api_keys.write",
            "audit_logs.read",
            "keys.introspect",
            "projects.read",
            "projects.write",
            "users.read",
            "users.write"
        ])
    );
    let value = body["api_key"]["value"].as_str().unwrap();
    let made = app
        .request_as(value, Method::POST, KEYS)
        .json(&json!({ "name": "Ada's deploy key" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::OK);
}

async fn accept_needs_no_admin_key_and_is_served_with_and_without_v1(app: TestApp) {
    let first = invite(&app, "one@example.com", "reader").await;
    let second = invite(&app, "two@example.com", "reader").await;

    // No Authorization header at all, on the prefixed and the unprefixed path.
    let prefixed = accept(&app, &token_of(&first), "One").await;
    let unprefixed = app
        .client
        .post(app.url("/organization/invites/accept"))
        .json(&json!({ "token": token_of(&second), "name": "Two" }))
        .send()
        .await
        .unwrap();
    let other_method = app.client.get(app.url(ACCEPT)).send().await.unwrap();

    assert_eq!(prefixed.status(), StatusCode::OK);
    assert_eq!(unprefixed.status(), StatusCode::OK);
    assert_error(other_method, StatusCode::METHOD_NOT_ALLOWED, "GET accept").await;
    // The rest of the resource still needs a key.
    let anonymous = app.client.get(app.url(INVITES)).send().await.unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "anonymous list").await;
}

async fn every_unusable_token_gets_the_same_refusal(app: TestApp) {
    let used = token_of(&invite(&app, "used@example.com", "reader").await);
    accepted(&app, &used, "Used").await;
    let withdrawn_invite = invite(&app, "withdrawn@example.com", "reader").await;
    let withdrawn = token_of(&withdrawn_invite);
    let deleted = app
        .delete(&format!("{INVITES}/{}", id_of(&withdrawn_invite)))
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let expiring = token_of(&invite(&app, "late@example.com", "reader").await);
    app.clock.advance(TTL);
    let unknown = generate_invite_token().expose().to_owned();
    let mut bad_checksum = unknown.clone();
    bad_checksum.replace_range(unknown.len() - 6.., "zzzzzz");

    let cases = [
        ("already used", used.clone()),
        ("withdrawn", withdrawn),
        ("expired", expiring),
        ("unknown", unknown),
        ("bad checksum", bad_checksum),
        ("an admin key", app.admin_key.clone()),
        ("truncated", used[..20].to_owned()),
        ("empty", String::new()),
        ("not ASCII", format!("{}é", &used[..used.len() - 2])),
    ];
    let mut refusals = Vec::new();
    for (case, token) in cases {
        let error = assert_error(
            accept(&app, &token, "Someone").await,
            StatusCode::BAD_REQUEST,
            case,
        )
        .await;
        assert_eq!(error["code"], "invalid_invite_token", "{case}");
        assert_eq!(error["param"], "token", "{case}");
        if token.len() > 12 {
            assert!(!error.to_string().contains(&token[8..]), "{case}: {error}");
        }
        refusals.push(error);
    }
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:?}");
    // Nothing was made by any of them.
    let (_, users) = read(app.get(USERS).await).await;
    assert_eq!(
        ids(&users).len(),
        2,
        "the owner and the one acceptance: {users}"
    );
}

async fn an_invite_expires_after_the_ttl_and_no_longer_blocks_its_email(app: TestApp) {
    let created = invite(&app, "late@example.com", "reader").await;
    let id = id_of(&created);

    app.clock.advance(TTL - 1);
    assert_eq!(get_invite(&app, &id).await["status"], "pending");
    app.clock.advance(1);
    let expired = get_invite(&app, &id).await;
    let page = list_invites(&app, "").await;
    let refused = accept(&app, &token_of(&created), "Late").await;
    let again = invite(&app, "LATE@example.com", "owner").await;

    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["accepted_at"], Value::Null);
    assert_eq!(page["data"][0]["status"], "expired");
    let error = assert_error(refused, StatusCode::BAD_REQUEST, "expired token").await;
    assert_eq!(error["code"], "invalid_invite_token");
    assert_eq!(again["status"], "pending");
    assert_eq!(again["created_at"], START + TTL);
    accepted(&app, &token_of(&again), "Late, but in").await;
}

async fn emails_of_members_and_pending_invites_are_taken_whatever_their_case(app: TestApp) {
    invite(&app, "grace@example.com", "reader").await;

    for (email, code) in [
        ("OWNER@example.com", "email_taken"),
        ("owner@EXAMPLE.com", "email_taken"),
        ("Grace@Example.com", "invite_pending"),
        (" grace@example.com", "invite_pending"),
    ] {
        let response = app
            .post_json(INVITES, &json!({ "email": email, "role": "reader" }))
            .await;
        let error = assert_error(response, StatusCode::CONFLICT, email).await;
        assert_eq!(error["code"], code, "{email}");
        assert!(
            !error["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("example.com"),
            "{email}: {error}"
        );
    }
    let (_, page) = read(app.get(INVITES).await).await;
    assert_eq!(ids(&page).len(), 1, "{page}");
}

async fn accept_refuses_an_email_a_member_took_in_the_meantime(app: TestApp) {
    let created = invite(&app, "taken@example.com", "reader").await;
    app.with_db(|conn| {
        create_owner_with_key(
            conn,
            &KeyName::parse("owner", "Quicker").unwrap(),
            Some(&Email::parse("email", "Taken@example.com").unwrap()),
            &KeyName::parse("name", "k").unwrap(),
            START,
        )
        .expect("bootstrap with the invited address");
    })
    .await;

    let response = accept(&app, &token_of(&created), "Slower").await;

    let error = assert_error(response, StatusCode::CONFLICT, "email taken").await;
    assert_eq!(error["code"], "email_taken");
    assert_eq!(
        get_invite(&app, &id_of(&created)).await["status"],
        "pending"
    );
    let (_, users) = read(
        app.get(&format!("{USERS}?emails[]=taken@example.com"))
            .await,
    )
    .await;
    assert_eq!(users["data"].as_array().unwrap().len(), 1, "{users}");
    assert_eq!(users["data"][0]["name"], "Quicker");
}

async fn delete_withdraws_pending_and_expired_invites_but_not_accepted_ones(app: TestApp) {
    let expired = invite(&app, "expired@example.com", "reader").await;
    let taken = invite(&app, "accepted@example.com", "reader").await;
    accepted(&app, &token_of(&taken), "Accepted").await;
    app.clock.advance(TTL);
    let pending = invite(&app, "pending@example.com", "reader").await;
    assert_eq!(
        get_invite(&app, &id_of(&expired)).await["status"],
        "expired"
    );

    for doomed in [&pending, &expired] {
        let id = id_of(doomed);
        let (status, body) = read(app.delete(&format!("{INVITES}/{id}")).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({ "object": "organization.invite.deleted", "id": id, "deleted": true })
        );
        let gone = app.get(&format!("{INVITES}/{id}")).await;
        assert_error(gone, StatusCode::NOT_FOUND, "deleted invite").await;
    }
    let refused = app.delete(&format!("{INVITES}/{}", id_of(&taken))).await;
    let error = assert_error(refused, StatusCode::CONFLICT, "accepted invite").await;
    assert_eq!(error["code"], "invite_accepted");
    assert_eq!(get_invite(&app, &id_of(&taken)).await["status"], "accepted");
    let deleted_token = accept(&app, &token_of(&pending), "Too late").await;
    let error = assert_error(deleted_token, StatusCode::BAD_REQUEST, "deleted token").await;
    assert_eq!(error["code"], "invalid_invite_token");
}

async fn invalid_invite_bodies_are_400s_naming_the_field(app: TestApp) {
    let secret = generate_invite_token().expose().to_owned();
    let cases = [
        (json!({ "role": "reader" }), Some("email"), "email missing"),
        (
            json!({ "email": null, "role": "reader" }),
            Some("email"),
            "email null",
        ),
        (
            json!({ "email": "nope", "role": "reader" }),
            Some("email"),
            "not an address",
        ),
        (
            json!({ "email": format!("{secret}@"), "role": "reader" }),
            Some("email"),
            "a secret as email",
        ),
        (
            json!({ "email": 7, "role": "reader" }),
            Some("email"),
            "email a number",
        ),
        (
            json!({ "email": "a@example.com" }),
            Some("role"),
            "role missing",
        ),
        (
            json!({ "email": "a@example.com", "role": "member" }),
            Some("role"),
            "member role",
        ),
        (
            json!({ "email": "a@example.com", "role": "Owner" }),
            Some("role"),
            "capitalised role",
        ),
        (
            json!({ "email": "a@example.com", "role": secret }),
            Some("role"),
            "a secret as role",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "projects": [{ "id": "proj_1", "role": "reader" }] }),
            Some("projects"),
            "a project role of the organisation",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "projects": [{ "id": "proj_1", "role": "member" }, { "id": "proj_1", "role": "owner" }] }),
            Some("projects"),
            "a project named twice",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "projects": [{ "id": "proj_1" }] }),
            Some("projects[0]"),
            "a project without a role",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "projects": [{ "id": "proj_1", "role": "member", "admin": true }] }),
            Some("projects[0].admin"),
            "a project with an unknown field",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "projects": "proj_1" }),
            Some("projects"),
            "projects a string",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", "emial": "x" }),
            Some("emial"),
            "unknown field",
        ),
        (
            json!({ "email": "a@example.com", "role": "reader", (secret.as_str()): 1 }),
            None,
            "a secret as field name",
        ),
        (json!([]), None, "not an object"),
    ];

    for (body, param, case) in cases {
        let response = app.post_json(INVITES, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, case).await;
        assert_eq!(error["param"].as_str(), param, "{case}: {error}");
        assert!(
            !error.to_string().contains(&secret[10..]),
            "{case}: {error}"
        );
    }
    let (_, page) = read(app.get(INVITES).await).await;
    assert_eq!(page["data"], json!([]), "nothing was invited");
}

async fn invalid_accept_bodies_are_400s_naming_the_field(app: TestApp) {
    let token = token_of(&invite(&app, "grace@example.com", "reader").await);
    let cases = [
        (json!({ "name": "Grace" }), Some("token"), "token missing"),
        (
            json!({ "token": 1, "name": "Grace" }),
            Some("token"),
            "token a number",
        ),
        (json!({ "token": token }), Some("name"), "name missing"),
        (
            json!({ "token": token, "name": "   " }),
            Some("name"),
            "name blank",
        ),
        (
            json!({ "token": token, "name": "a\u{202e}b" }),
            Some("name"),
            "name with an override",
        ),
        (
            json!({ "token": token, "name": "x".repeat(257) }),
            Some("name"),
            "name too long",
        ),
        (
            json!({ "token": token, "name": "Grace", "email": "g@example.com" }),
            Some("email"),
            "unknown field",
        ),
    ];

    for (body, param, case) in cases {
        let response = app
            .client
            .post(app.url(ACCEPT))
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::BAD_REQUEST, case).await;
        assert_eq!(error["param"].as_str(), param, "{case}: {error}");
        assert!(!error.to_string().contains(&token[10..]), "{case}: {error}");
    }
    let empty = app.client.post(app.url(ACCEPT)).send().await.unwrap();
    let error = assert_error(empty, StatusCode::BAD_REQUEST, "no body").await;
    assert_eq!(error["code"], "invalid_json");
    // None of these used the token up.
    accepted(&app, &token, "Grace").await;
}

async fn invites_need_their_scopes_before_the_body_is_read(app: TestApp) {
    let id = id_of(&invite(&app, "grace@example.com", "reader").await);
    let no_write = key_with(
        &app,
        &["users.read", "admin_api_keys.read", "audit_logs.read"],
    )
    .await;
    let no_read = key_with(&app, &["users.write", "admin_api_keys.read"]).await;

    // A body that is not even JSON: the scope is checked first.
    let create = app
        .request_as(&no_write, Method::POST, INVITES)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let delete = app
        .request_as(&no_write, Method::DELETE, &format!("{INVITES}/{id}"))
        .send()
        .await
        .unwrap();
    let list = app
        .request_as(&no_read, Method::GET, INVITES)
        .send()
        .await
        .unwrap();
    let retrieve = app
        .request_as(&no_read, Method::GET, &format!("{INVITES}/{id}"))
        .send()
        .await
        .unwrap();

    for (response, scope, case) in [
        (create, "users.write", "create"),
        (delete, "users.write", "delete"),
        (list, "users.read", "list"),
        (retrieve, "users.read", "retrieve"),
    ] {
        let error = assert_error(response, StatusCode::FORBIDDEN, case).await;
        assert_eq!(error["code"], format!("missing_scope.{scope}"), "{case}");
    }
    assert_eq!(
        get_invite(&app, &id).await["status"],
        "pending",
        "not deleted"
    );
}

async fn inviting_needs_every_scope_the_invitees_key_will_hold(app: TestApp) {
    let narrow = key_with(&app, &["users.write", "users.read"]).await;
    let readers_scopes = key_with(
        &app,
        &[
            "users.write",
            "users.read",
            "admin_api_keys.read",
            "audit_logs.read",
            "keys.introspect",
            "projects.read",
        ],
    )
    .await;

    let as_owner = app
        .request_as(&readers_scopes, Method::POST, INVITES)
        .json(&json!({ "email": "owner2@example.com", "role": "owner" }))
        .send()
        .await
        .unwrap();
    let as_reader = app
        .request_as(&narrow, Method::POST, INVITES)
        .json(&json!({ "email": "reader@example.com", "role": "reader" }))
        .send()
        .await
        .unwrap();
    let allowed = app
        .request_as(&readers_scopes, Method::POST, INVITES)
        .json(&json!({ "email": "reader@example.com", "role": "reader" }))
        .send()
        .await
        .unwrap();

    let error = assert_error(as_owner, StatusCode::FORBIDDEN, "owner invite").await;
    assert!(
        error["code"]
            .as_str()
            .unwrap()
            .starts_with("missing_scope."),
        "{error}"
    );
    assert_error(
        as_reader,
        StatusCode::FORBIDDEN,
        "reader invite, narrow key",
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
}

async fn paging_through_invites_made_in_the_same_second_neither_skips_nor_repeats(app: TestApp) {
    for n in 0..5 {
        invite(&app, &format!("same{n}@example.com"), "reader").await;
    }
    app.clock.advance(1);
    for n in 0..3 {
        invite(&app, &format!("later{n}@example.com"), "owner").await;
    }
    let all = list_invites(&app, "limit=100").await;
    let expected = ids(&all);
    assert_eq!(expected.len(), 8);
    let order: Vec<(i64, String)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["created_at"].as_i64().unwrap(), id_of(i)))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "oldest first, ties by id");

    for limit in 1..=9 {
        let mut seen = Vec::new();
        let mut query = format!("limit={limit}");
        loop {
            let page = list_invites(&app, &query).await;
            let page_ids = ids(&page);
            assert!(page_ids.len() <= limit, "limit {limit}");
            seen.extend(page_ids);
            if page["has_more"] == false {
                break;
            }
            query = format!("limit={limit}&after={}", page["last_id"].as_str().unwrap());
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    let default = list_invites(&app, "").await;
    assert_eq!(ids(&default), expected, "the default page holds 20");
}

async fn invalid_list_queries_are_400s(app: TestApp) {
    let secret = generate_invite_token().expose().to_owned();
    for (query, param) in [
        ("limit=0", Some("limit")),
        ("limit=101", Some("limit")),
        ("limit=ten", Some("limit")),
        ("after=invite-AAAAAAAAAAAAAAAAAAAAAAAA", Some("after")),
        (&format!("after={secret}") as &str, Some("after")),
        ("order=desc", Some("order")),
        ("limit=1&limit=2", Some("limit")),
    ] {
        let response = app.get(&format!("{INVITES}?{query}")).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"].as_str(), param, "{query}: {error}");
        assert!(
            !error.to_string().contains(&secret[10..]),
            "{query}: {error}"
        );
    }
    let retrieve = app
        .get(&format!("{INVITES}/invite-AAAAAAAAAAAAAAAAAAAAAAAA?x=1"))
        .await;
    assert_error(retrieve, StatusCode::BAD_REQUEST, "query on retrieve").await;
}

async fn invite_changes_are_audited_with_the_right_actors(app: TestApp) {
    app.clock.advance(1);
    let kept = invite(&app, "Grace@example.com", "reader").await;
    let doomed = invite(&app, "gone@example.com", "owner").await;
    app.clock.advance(1);
    let body = accepted(&app, &token_of(&kept), "Grace").await;
    app.clock.advance(1);
    let deleted = app.delete(&format!("{INVITES}/{}", id_of(&doomed))).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let user_id = id_of(&body["user"]);
    let key_id = id_of(&body["api_key"]);

    let (status, page) = read(
        app.get(&format!("{LOGS}?effective_at[gt]={START}&limit=100"))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["data"].as_array().unwrap();
    let of = |kind: &str, resource: &str| -> Value {
        let found: Vec<&Value> = entries
            .iter()
            .filter(|e| e["type"] == kind && e[kind]["id"] == resource)
            .collect();
        assert_eq!(found.len(), 1, "one {kind} for {resource}: {page}");
        found[0].clone()
    };
    let by_key = json!({
        "type": "api_key",
        "api_key": { "id": app.admin_key_id, "type": "user", "user": { "id": app.owner_id, "email": "owner@example.com" }, "ip_address": "127.0.0.1" }
    });
    let by_session = json!({
        "type": "session",
        "session": { "user": { "id": user_id, "email": "grace@example.com" }, "ip_address": "127.0.0.1" }
    });
    let sent = of("invite.sent", &id_of(&kept));
    assert_eq!(sent["actor"], by_key);
    assert_eq!(sent["effective_at"], START + 1);
    assert_eq!(
        sent["invite.sent"],
        json!({ "id": id_of(&kept), "data": { "email": "grace@example.com", "role": "reader" } })
    );
    assert_eq!(
        of("invite.sent", &id_of(&doomed))["invite.sent"]["data"]["role"],
        "owner"
    );
    for (kind, resource) in [
        ("invite.accepted", id_of(&kept)),
        ("user.added", user_id.clone()),
        ("api_key.created", key_id.clone()),
    ] {
        let entry = of(kind, &resource);
        assert_eq!(entry["actor"], by_session, "{kind}");
        assert_eq!(entry["effective_at"], START + 2, "{kind}");
    }
    assert_eq!(
        of("user.added", &user_id)["user.added"],
        json!({ "id": user_id, "data": { "role": "reader" } })
    );
    assert_eq!(
        of("invite.accepted", &id_of(&kept))["invite.accepted"],
        json!({ "id": id_of(&kept) })
    );
    let withdrawn = of("invite.deleted", &id_of(&doomed));
    assert_eq!(withdrawn["actor"], by_key);
    assert_eq!(withdrawn["invite.deleted"], json!({ "id": id_of(&doomed) }));
    assert_eq!(entries.len(), 6, "{page}");
    // Neither the accept tokens nor the new key's value are in the log.
    let text = page.to_string();
    for secret in [
        token_of(&kept),
        token_of(&doomed),
        body["api_key"]["value"].as_str().unwrap().to_owned(),
    ] {
        assert!(
            !text.contains(&secret[10..]),
            "the audit log holds a secret"
        );
    }
}

fn short_ttl(settings: &mut Settings) {
    settings.invite_ttl = std::time::Duration::from_secs(120);
}

async fn invites_live_as_long_as_the_configured_ttl(app: TestApp) {
    let created = invite(&app, "quick@example.com", "reader").await;

    app.clock.advance(120);

    assert_eq!(created["expires_at"], START + 120);
    assert_eq!(
        get_invite(&app, &id_of(&created)).await["status"],
        "expired"
    );
    let refused = accept(&app, &token_of(&created), "Quick").await;
    assert_error(refused, StatusCode::BAD_REQUEST, "expired").await;
}

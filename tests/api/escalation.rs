//! The ways around "take a leaver's access away" that a review found, closed: invites outlive
//! neither their maker's removal nor their authority, promotion and re-enabling need the
//! caller to hold what they hand back, rotating someone else's key needs `users.write`, and
//! an organisation with no full admin key left can still disable a leaked one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    an_invite_dies_with_its_maker_and_sleeps_while_they_cannot_invite,
    promoting_or_re_enabling_needs_the_roles_every_scope,
    rotating_another_users_key_needs_users_write,
    without_any_full_admin_key_a_leaked_key_can_still_be_disabled,
);

const INVITES: &str = "/v1/organization/invites";
const KEYS: &str = "/v1/organization/admin_api_keys";
const USERS: &str = "/v1/organization/users";

const ALL: [&str; 8] = [
    "admin_api_keys.read",
    "admin_api_keys.write",
    "audit_logs.read",
    "keys.introspect",
    "projects.read",
    "projects.write",
    "users.read",
    "users.write",
];

/// An owner invite made by `key`: its id and accept token.
async fn invite_by(app: &TestApp, key: &str, email: &str) -> (String, String) {
    let body = json!({ "email": email, "role": "owner" });
    let (status, made) = read(app.send_as(key, Method::POST, INVITES, Some(&body)).await).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    (
        made["id"].as_str().unwrap().to_owned(),
        made["accept_token"].as_str().unwrap().to_owned(),
    )
}

async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("{INVITES}/accept")))
        .json(&json!({ "token": token, "name": "Newcomer" }))
        .send()
        .await
        .unwrap()
}

async fn set_user(app: &TestApp, key: &str, user_id: &str, change: Value) -> reqwest::Response {
    app.send_as(
        key,
        Method::POST,
        &format!("{USERS}/{user_id}"),
        Some(&change),
    )
    .await
}

async fn an_invite_dies_with_its_maker_and_sleeps_while_they_cannot_invite(app: TestApp) {
    let leaver = app.add_member("owner").await;
    // Inviting an owner needs every scope and every permission.
    let leaver_key = app
        .create_key(
            json!({ "name": "inviter", "owner_id": leaver, "scopes": ALL, "permissions": ["*"] }),
        )
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (kept_id, kept) = invite_by(&app, &leaver_key, "kept@example.com").await;
    let (gone_id, gone) = invite_by(&app, &leaver_key, "gone@example.com").await;

    // While the maker is disabled or a reader, their invites cannot be accepted.
    for (change, undo) in [
        (json!({ "enabled": false }), json!({ "enabled": true })),
        (json!({ "role": "reader" }), json!({ "role": "owner" })),
    ] {
        let changed = set_user(&app, &app.admin_key, &leaver, change.clone()).await;
        assert_eq!(changed.status(), StatusCode::OK, "{change}");
        let refused =
            assert_error(accept(&app, &kept).await, StatusCode::BAD_REQUEST, "asleep").await;
        assert_eq!(refused["code"], "invalid_invite_token");
        let undone = set_user(&app, &app.admin_key, &leaver, undo).await;
        assert_eq!(undone.status(), StatusCode::OK);
    }
    let (status, joined) = read(accept(&app, &kept).await).await;
    assert_eq!(status, StatusCode::OK, "awake again: {joined}");

    // Deleting the maker withdraws what is still pending: the token is dead, the invite gone.
    let deleted = app.delete(&format!("{USERS}/{leaver}")).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let refused = assert_error(
        accept(&app, &gone).await,
        StatusCode::BAD_REQUEST,
        "withdrawn",
    )
    .await;
    assert_eq!(refused["code"], "invalid_invite_token");
    assert_eq!(
        app.get(&format!("{INVITES}/{gone_id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    // The accepted one stays, as the record of the member it made.
    assert_eq!(
        app.get(&format!("{INVITES}/{kept_id}")).await.status(),
        StatusCode::OK
    );
    let (_, log) = read(
        app.get(&format!(
            "/v1/organization/audit_logs?event_types[]=invite.deleted&resource_ids[]={gone_id}"
        ))
        .await,
    )
    .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "{log}");
}

async fn promoting_or_re_enabling_needs_the_roles_every_scope(app: TestApp) {
    let member = app.add_member("owner").await;
    let (_, member_key) = app.key_for(&member, Some(&ALL)).await;
    let user_manager = app
        .create_key(json!({ "name": "users only", "scopes": ["users.read", "users.write"] }))
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // Demoted by a full key; a key that holds only the user scopes cannot hand write back.
    assert_eq!(
        set_user(&app, &app.admin_key, &member, json!({ "role": "reader" }))
            .await
            .status(),
        StatusCode::OK
    );
    let refused = set_user(&app, &user_manager, &member, json!({ "role": "owner" })).await;
    let error = assert_error(
        refused,
        StatusCode::FORBIDDEN,
        "promote without the owner scopes",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.read");
    let create = app
        .send_as(
            &member_key,
            Method::POST,
            KEYS,
            Some(&json!({ "name": "still a reader" })),
        )
        .await;
    assert_eq!(
        create.status(),
        StatusCode::FORBIDDEN,
        "the refused promotion changed nothing"
    );

    // Disabled by a full key; re-enabling gives a reader's keys back only the read scopes,
    // which this key does not hold either.
    assert_eq!(
        set_user(&app, &app.admin_key, &member, json!({ "enabled": false }))
            .await
            .status(),
        StatusCode::OK
    );
    let refused = set_user(&app, &user_manager, &member, json!({ "enabled": true })).await;
    assert_error(
        refused,
        StatusCode::FORBIDDEN,
        "re-enable without the role's scopes",
    )
    .await;
    // Demoting and disabling take nothing the caller lacks, so they need only users.write.
    let other = app.add_member("owner").await;
    assert_eq!(
        set_user(&app, &user_manager, &other, json!({ "role": "reader" }))
            .await
            .status(),
        StatusCode::OK
    );
    // A full key may do both.
    assert_eq!(
        set_user(
            &app,
            &app.admin_key,
            &member,
            json!({ "enabled": true, "role": "owner" })
        )
        .await
        .status(),
        StatusCode::OK
    );
}

async fn rotating_another_users_key_needs_users_write(app: TestApp) {
    let member = app.add_member("owner").await;
    let (theirs, _) = app.key_for(&member, Some(&["admin_api_keys.read"])).await;
    let keys_only = app
        .create_key(json!({ "name": "keys only", "scopes": ["admin_api_keys.read", "admin_api_keys.write"] }))
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = app
        .send_as(
            &keys_only,
            Method::POST,
            &format!("{KEYS}/{theirs}/rotate"),
            None,
        )
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "rotate someone else's key").await;
    assert_eq!(error["code"], "missing_scope.users.write");
    // Its own owner's keys it rotates as before.
    let own = app
        .create_key(json!({ "name": "own", "scopes": ["admin_api_keys.read"] }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = app
        .send_as(
            &keys_only,
            Method::POST,
            &format!("{KEYS}/{own}/rotate"),
            None,
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    // With users.write, someone else's key rotates too.
    let rotated = app
        .send_as(
            &app.admin_key,
            Method::POST,
            &format!("{KEYS}/{theirs}/rotate"),
            None,
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
}

async fn without_any_full_admin_key_a_leaked_key_can_still_be_disabled(app: TestApp) {
    let leaked = app
        .create_key(json!({ "name": "leaked", "scopes": ["admin_api_keys.read"] }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // As an organisation upgraded from before the user scopes may be: its writer lacks
    // users.write, so no key counts as a full admin.
    let boot = app.admin_key_id.clone();
    app.with_db(move |conn| {
        use ::admin_api_keys::schema::admin_api_keys as keys;
        use diesel::prelude::*;
        diesel::update(keys::table.filter(keys::id.eq(boot)))
            .set(keys::scopes.eq("admin_api_keys.read admin_api_keys.write"))
            .execute(conn)
    })
    .await
    .unwrap();
    app.state.cache.reset();

    let disable = app
        .send_as(
            &app.admin_key,
            Method::POST,
            &format!("{KEYS}/{leaked}"),
            Some(&json!({ "enabled": false })),
        )
        .await;
    let (status, body) = read(disable).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(
        app.delete(&format!("{KEYS}/{leaked}")).await.status(),
        StatusCode::OK
    );
}

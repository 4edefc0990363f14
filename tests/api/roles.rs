//! Roles are ceilings: a key may do what its own scopes allow within its owner's role, judged
//! on every request; the lock-out guard keeps an enabled owner with a usable admin key; and a
//! change to a user reaches another PostgreSQL replica within a second.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    each_endpoint_passes_exactly_when_the_key_and_the_role_both_allow_it,
    demoting_an_owner_takes_write_access_from_their_keys_on_the_next_request,
    promoting_a_reader_gives_their_keys_nothing_new,
    the_last_owner_cannot_be_demoted_disabled_or_deleted,
    the_last_admin_key_cannot_be_disabled_deleted_or_narrowed,
    the_guard_passes_once_another_owner_holds_a_usable_admin_key,
);

const USERS: &str = "/v1/organization/users";
const KEYS: &str = "/v1/organization/admin_api_keys";
const AUDIT: &str = "/v1/organization/audit_logs";
/// How long a change may take to reach another replica.
const PROPAGATION: Duration = Duration::from_secs(1);

const AKR: &str = "admin_api_keys.read";
const AKW: &str = "admin_api_keys.write";
const ALR: &str = "audit_logs.read";
const KI: &str = "keys.introspect";
const PR: &str = "projects.read";
const PW: &str = "projects.write";
const UR: &str = "users.read";
const UW: &str = "users.write";
const ALL: [&str; 8] = [AKR, AKW, ALR, KI, PR, PW, UR, UW];

fn user_path(id: &str) -> String {
    format!("{USERS}/{id}")
}

/// Changes the user `id` with the bootstrap key; returns the status and body.
async fn modify(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    read(app.post_json(&user_path(id), &body).await).await
}

/// Changes the user `id` with the bootstrap key, asserting 200.
async fn set(app: &TestApp, id: &str, body: Value) {
    let (status, changed) = modify(app, id, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}: {changed}");
}

/// Status and error code of a request.
async fn outcome(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, body) = read(app.send_as(key, method, path, body).await).await;
    (status.as_u16(), body["error"]["code"].clone())
}

/// A write that needs `admin_api_keys.write` (a new key for the caller's owner, with the
/// caller's scopes).
async fn create_key(app: &TestApp, key: &str) -> (u16, Value) {
    let body = json!({ "name": "probe" });
    outcome(app, key, Method::POST, KEYS, Some(&body)).await
}

/// A write that needs `users.write` (renaming `victim`).
async fn rename_user(app: &TestApp, key: &str, victim: &str) -> (u16, Value) {
    let body = json!({ "name": "renamed" });
    outcome(app, key, Method::POST, &user_path(victim), Some(&body)).await
}

/// One endpoint of the matrix: what it needs and how to call it.
struct Endpoint {
    name: &'static str,
    needs: &'static str,
}

const ENDPOINTS: [Endpoint; 9] = [
    Endpoint {
        name: "list keys",
        needs: AKR,
    },
    Endpoint {
        name: "retrieve key",
        needs: AKR,
    },
    Endpoint {
        name: "create key",
        needs: AKW,
    },
    Endpoint {
        name: "update key",
        needs: AKW,
    },
    Endpoint {
        name: "audit log",
        needs: ALR,
    },
    Endpoint {
        name: "list users",
        needs: UR,
    },
    Endpoint {
        name: "retrieve user",
        needs: UR,
    },
    Endpoint {
        name: "modify user",
        needs: UW,
    },
    Endpoint {
        name: "delete user",
        needs: UW,
    },
];

async fn call_endpoint(app: &TestApp, key: &str, index: usize) -> (u16, Value) {
    match index {
        0 => outcome(app, key, Method::GET, KEYS, None).await,
        1 => {
            let path = format!("{KEYS}/{}", app.admin_key_id);
            outcome(app, key, Method::GET, &path, None).await
        }
        2 => create_key(app, key).await,
        3 => {
            // A fresh victim each time: a rename needs no scope but the write one.
            let victim = app
                .create_key(json!({ "name": "victim", "scopes": [AKR] }))
                .await;
            let path = format!("{KEYS}/{}", victim["id"].as_str().unwrap());
            let body = json!({ "name": "renamed" });
            outcome(app, key, Method::POST, &path, Some(&body)).await
        }
        4 => outcome(app, key, Method::GET, AUDIT, None).await,
        5 => outcome(app, key, Method::GET, USERS, None).await,
        6 => outcome(app, key, Method::GET, &user_path(&app.owner_id), None).await,
        7 => {
            let victim = app.add_member("reader").await;
            rename_user(app, key, &victim).await
        }
        8 => {
            let victim = app.add_member("reader").await;
            outcome(app, key, Method::DELETE, &user_path(&victim), None).await
        }
        _ => unreachable!(),
    }
}

async fn each_endpoint_passes_exactly_when_the_key_and_the_role_both_allow_it(app: TestApp) {
    const Y: u16 = 200;
    const N: u16 = 403;
    // (key's own scopes, owner's role, expected status per endpoint of ENDPOINTS)
    #[rustfmt::skip]
    let matrix: [(&[&str], &str, [u16; 9]); 12] = [
        //                       lk rk ck uk al lu ru mu du
        (&[AKR], "owner",  [Y, Y, N, N, N, N, N, N, N]),
        (&[AKW], "owner",  [N, N, Y, Y, N, N, N, N, N]),
        (&[ALR], "owner",  [N, N, N, N, Y, N, N, N, N]),
        (&[UR],  "owner",  [N, N, N, N, N, Y, Y, N, N]),
        (&[UW],  "owner",  [N, N, N, N, N, N, N, Y, Y]),
        (&ALL,   "owner",  [Y, Y, Y, Y, Y, Y, Y, Y, Y]),
        (&[AKR], "reader", [Y, Y, N, N, N, N, N, N, N]),
        (&[AKW], "reader", [N, N, N, N, N, N, N, N, N]),
        (&[ALR], "reader", [N, N, N, N, Y, N, N, N, N]),
        (&[UR],  "reader", [N, N, N, N, N, Y, Y, N, N]),
        (&[UW],  "reader", [N, N, N, N, N, N, N, N, N]),
        (&ALL,   "reader", [Y, Y, N, N, Y, Y, Y, N, N]),
    ];
    for (held, role, expected) in matrix {
        // Keys are made while their user is an owner; a reader's row then demotes them, so
        // the row tests the ceiling, not only what a reader's key may be given.
        let user = app.add_member("owner").await;
        let (_, key) = app.key_for(&user, Some(held)).await;
        if role == "reader" {
            set(&app, &user, json!({ "role": "reader" })).await;
        }
        for (index, endpoint) in ENDPOINTS.iter().enumerate() {
            let (status, code) = call_endpoint(&app, &key, index).await;
            let context = format!("{held:?} as {role}: {}", endpoint.name);
            assert_eq!(status, expected[index], "{context}: {code}");
            if status == N {
                assert_eq!(
                    code,
                    format!("missing_scope.{}", endpoint.needs),
                    "{context}"
                );
            }
        }
    }
}

async fn demoting_an_owner_takes_write_access_from_their_keys_on_the_next_request(app: TestApp) {
    let user = app.add_member("owner").await;
    let victim = app.add_member("reader").await;
    let (key_id, key) = app.key_for(&user, Some(&ALL)).await;
    assert_eq!(create_key(&app, &key).await.0, 200);
    assert_eq!(rename_user(&app, &key, &victim).await.0, 200);

    set(&app, &user, json!({ "role": "reader" })).await;
    assert_eq!(
        create_key(&app, &key).await,
        (403, json!("missing_scope.admin_api_keys.write"))
    );
    assert_eq!(
        rename_user(&app, &key, &victim).await,
        (403, json!("missing_scope.users.write"))
    );
    for path in [KEYS, USERS, AUDIT] {
        assert_eq!(
            outcome(&app, &key, Method::GET, path, None).await.0,
            200,
            "{path}"
        );
    }
    // The key keeps its own scopes; its owner's role shows where the ceiling is.
    let (_, shown) = read(app.get(&format!("{KEYS}/{key_id}")).await).await;
    assert_eq!(shown["scopes"], json!(ALL));
    assert_eq!(shown["owner"]["role"], "reader");
    let listed = app.list(&format!("owner_id={user}")).await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["owner"]["role"] == "reader"),
        "{listed}"
    );
    // Nor may the demoted key hand out what it no longer has.
    let body = json!({ "name": "sneaky", "scopes": [AKR] });
    let (status, _) = outcome(&app, &key, Method::POST, KEYS, Some(&body)).await;
    assert_eq!(status, 403);

    // Promoting back lifts the ceiling: the key's own scopes apply again.
    set(&app, &user, json!({ "role": "owner" })).await;
    assert_eq!(create_key(&app, &key).await.0, 200);
    assert_eq!(rename_user(&app, &key, &victim).await.0, 200);
}

async fn promoting_a_reader_gives_their_keys_nothing_new(app: TestApp) {
    let reader = app.add_member("reader").await;
    let victim = app.add_member("reader").await;
    let (key_id, key) = app.key_for(&reader, None).await;
    let read_scopes = json!([AKR, ALR, KI, PR, UR]);
    let (_, shown) = read(app.get(&format!("{KEYS}/{key_id}")).await).await;
    assert_eq!(
        shown["scopes"], read_scopes,
        "a reader's key gets the read scopes"
    );
    assert_eq!(create_key(&app, &key).await.0, 403);

    // A reader's key cannot be given write scopes afterwards either.
    let response = app
        .post_json(
            &format!("{KEYS}/{key_id}"),
            &json!({ "scopes": [AKR, AKW] }),
        )
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "re-scope").await;
    assert_eq!(error["code"], "scope_exceeds_role");

    set(&app, &reader, json!({ "role": "owner" })).await;
    assert_eq!(
        create_key(&app, &key).await,
        (403, json!("missing_scope.admin_api_keys.write")),
        "a role is a ceiling, not a grant"
    );
    assert_eq!(
        rename_user(&app, &key, &victim).await,
        (403, json!("missing_scope.users.write"))
    );
    let (_, shown) = read(app.get(&format!("{KEYS}/{key_id}")).await).await;
    assert_eq!(shown["scopes"], read_scopes);
    assert_eq!(shown["owner"]["role"], "owner");
    // Only a new grant gives them more.
    let (_, writer) = app.key_for(&reader, Some(&[AKW])).await;
    assert_eq!(create_key(&app, &writer).await.0, 200);
}

/// Users and keys that look like admins but are not: none of them may keep the organisation
/// running.
async fn near_admins(app: &TestApp) {
    // A reader with a key holding every scope (made while they were an owner).
    let demoted = app.add_member("owner").await;
    app.key_for(&demoted, Some(&ALL)).await;
    set(app, &demoted, json!({ "role": "reader" })).await;
    // A reader with the read scopes.
    let reader = app.add_member("reader").await;
    app.key_for(&reader, None).await;
    // An owner whose keys lack users.write or admin_api_keys.write.
    let partial = app.add_member("owner").await;
    app.key_for(&partial, Some(&[AKR, AKW, ALR, UR])).await;
    app.key_for(&partial, Some(&[AKR, ALR, UR, UW])).await;
    // An owner whose every-scope key is disabled, and one whose key expires in a minute.
    let with_disabled = app.add_member("owner").await;
    let (disabled_id, _) = app.key_for(&with_disabled, Some(&ALL)).await;
    let off = app
        .post_json(
            &format!("{KEYS}/{disabled_id}"),
            &json!({ "enabled": false }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    let expiring = app.add_member("owner").await;
    let key = app
        .create_key(json!({ "name": "soon", "owner_id": expiring, "expires_in_seconds": 60 }))
        .await;
    assert_eq!(key["owner"]["id"], expiring.as_str());
    // A disabled owner with a usable key.
    let disabled_owner = app.add_member("owner").await;
    app.key_for(&disabled_owner, Some(&ALL)).await;
    set(app, &disabled_owner, json!({ "enabled": false })).await;
}

async fn the_last_owner_cannot_be_demoted_disabled_or_deleted(app: TestApp) {
    near_admins(&app).await;
    let owner = app.owner_id.clone();
    let before = {
        let (_, user) = read(app.get(&user_path(&owner)).await).await;
        user
    };
    let path = user_path(&owner);
    let refusals = [
        (
            "demote",
            app.post_json(&path, &json!({ "role": "reader" })).await,
        ),
        (
            "disable",
            app.post_json(&path, &json!({ "enabled": false })).await,
        ),
        (
            "demote and rename",
            app.post_json(&path, &json!({ "role": "reader", "name": "Gone" }))
                .await,
        ),
        ("delete", app.delete(&path).await),
    ];
    for (what, response) in refusals {
        let error = assert_error(response, StatusCode::CONFLICT, what).await;
        assert_eq!(error["code"], "last_owner", "{what}");
    }
    let (_, after) = read(app.get(&path).await).await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(
        create_key(&app, &app.admin_key).await.0,
        200,
        "the owner's key still writes"
    );
    let (_, entries) = read(
        app.get(&format!(
            "{AUDIT}?event_types[]=user.updated&event_types[]=user.deleted&resource_ids[]={owner}"
        ))
        .await,
    )
    .await;
    assert_eq!(
        entries["data"],
        json!([]),
        "refused changes are not audited"
    );
    // A harmless change to the last owner still passes.
    set(
        &app,
        &owner,
        json!({ "name": "Still here", "enabled": true, "role": "owner" }),
    )
    .await;
}

async fn the_last_admin_key_cannot_be_disabled_deleted_or_narrowed(app: TestApp) {
    near_admins(&app).await;
    let path = format!("{KEYS}/{}", app.admin_key_id);
    let refusals = [
        (
            "disable",
            app.post_json(&path, &json!({ "enabled": false })).await,
        ),
        (
            "drop users.write",
            app.post_json(&path, &json!({ "scopes": [AKR, AKW, ALR, UR] }))
                .await,
        ),
        (
            "drop admin_api_keys.write",
            app.post_json(&path, &json!({ "scopes": [AKR, ALR, UR, UW] }))
                .await,
        ),
        (
            "rotate into a minute-long key",
            app.post_json(
                &format!("{path}/rotate"),
                &json!({ "expires_in_seconds": 60 }),
            )
            .await,
        ),
        ("delete", app.delete(&path).await),
    ];
    for (what, response) in refusals {
        let error = assert_error(response, StatusCode::CONFLICT, what).await;
        assert_eq!(error["code"], "last_admin_key", "{what}");
    }
    let (_, key) = read(app.get(&path).await).await;
    assert_eq!(key["enabled"], true);
    assert_eq!(key["scopes"], json!(ALL));
    assert_eq!(create_key(&app, &app.admin_key).await.0, 200);
}

async fn the_guard_passes_once_another_owner_holds_a_usable_admin_key(app: TestApp) {
    near_admins(&app).await;
    let successor = app.add_member("owner").await;
    let (successor_key_id, successor_key) = app.key_for(&successor, Some(&ALL)).await;
    let owner = app.owner_id.clone();

    // Now the bootstrap owner may step down, and their key go.
    set(&app, &owner, json!({ "role": "reader" })).await;
    assert_eq!(
        create_key(&app, &app.admin_key).await,
        (403, json!("missing_scope.admin_api_keys.write"))
    );
    // The successor is now the last: their user and key are guarded in turn.
    let path = user_path(&successor);
    for body in [json!({ "role": "reader" }), json!({ "enabled": false })] {
        let response = app
            .send_as(&successor_key, Method::POST, &path, Some(&body))
            .await;
        let error = assert_error(response, StatusCode::CONFLICT, &body.to_string()).await;
        assert_eq!(error["code"], "last_owner");
    }
    let response = app
        .send_as(&successor_key, Method::DELETE, &path, None)
        .await;
    let error = assert_error(response, StatusCode::CONFLICT, "delete successor").await;
    assert_eq!(error["code"], "last_owner");
    let key_path = format!("{KEYS}/{successor_key_id}");
    let response = app
        .send_as(&successor_key, Method::DELETE, &key_path, None)
        .await;
    let error = assert_error(response, StatusCode::CONFLICT, "delete successor key").await;
    assert_eq!(error["code"], "last_admin_key");

    // The successor may delete the old owner (and their keys).
    let response = app
        .send_as(&successor_key, Method::DELETE, &user_path(&owner), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.send_as(&app.admin_key, Method::GET, USERS, None).await;
    let error = assert_error(response, StatusCode::UNAUTHORIZED, "deleted owner's key").await;
    assert_eq!(error["code"], "invalid_api_key");
}

/// Runs `check` until it holds; panics naming `what` once [`PROPAGATION`] has passed since
/// `since`. Returns how long it took.
async fn within_propagation(
    what: &str,
    since: Instant,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    while !check().await {
        assert!(
            since.elapsed() < PROPAGATION,
            "{what}: not seen on the other replica after {PROPAGATION:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    since.elapsed()
}

/// Retrieves the key `key_id` with `key` on `replica` until it costs no database query (the
/// fill after a creation may be voided by that creation's own notification).
async fn served_from_cache(replica: &TestApp, key: &str, key_id: &str) {
    let path = format!("{KEYS}/{key_id}");
    for _ in 0..50 {
        let before = replica.queries();
        let status = outcome(replica, key, Method::GET, &path, None).await.0;
        assert_eq!(status, 200);
        if replica.queries() == before {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the key is never served from the replica's cache");
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn disabling_and_demoting_a_user_reach_another_replica_within_a_second() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let user = a.add_member("owner").await;
    let victim = a.add_member("reader").await;
    let (key_id, key) = a.key_for(&user, Some(&ALL)).await;
    let retrieve = format!("{KEYS}/{key_id}");
    served_from_cache(&b, &key, &key_id).await;

    // Disable on A: B refuses the key with user_disabled, though it had it cached.
    set(&a, &user, json!({ "enabled": false })).await;
    let took = within_propagation("disable", Instant::now(), async || {
        outcome(&b, &key, Method::GET, &retrieve, None).await == (401, json!("user_disabled"))
    })
    .await;
    eprintln!("disable reached the other replica in {took:?}");
    // And keeps refusing it until the user is enabled again.
    for _ in 0..5 {
        assert_eq!(outcome(&b, &key, Method::GET, USERS, None).await.0, 401);
    }
    set(&a, &user, json!({ "enabled": true })).await;
    within_propagation("enable", Instant::now(), async || {
        outcome(&b, &key, Method::GET, &retrieve, None).await.0 == 200
    })
    .await;
    assert_eq!(rename_user(&b, &key, &victim).await.0, 200);
    served_from_cache(&b, &key, &key_id).await;

    // Demote on A: B takes the key's write access away; reads still work.
    set(&a, &user, json!({ "role": "reader" })).await;
    let took = within_propagation("demote", Instant::now(), async || {
        rename_user(&b, &key, &victim).await == (403, json!("missing_scope.users.write"))
    })
    .await;
    eprintln!("demote reached the other replica in {took:?}");
    assert_eq!(outcome(&b, &key, Method::GET, &retrieve, None).await.0, 200);
    assert_eq!(create_key(&b, &key).await.0, 403);

    // Promote back, then delete the user on A: B stops authenticating their key.
    set(&a, &user, json!({ "role": "owner" })).await;
    within_propagation("promote", Instant::now(), async || {
        rename_user(&b, &key, &victim).await.0 == 200
    })
    .await;
    served_from_cache(&b, &key, &key_id).await;
    let deleted = a.delete(&user_path(&user)).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    within_propagation("delete", Instant::now(), async || {
        outcome(&b, &key, Method::GET, &retrieve, None).await == (401, json!("invalid_api_key"))
    })
    .await;
}

//! The auth cache: no database round trip to authenticate in steady state, and every change
//! to a key honoured on the next request, on this replica and (PostgreSQL) on the others.

use std::time::{Duration, Instant};

use admin_api_keys::cache::invalidation::APPLICATION_NAME;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, START, TestApp, assert_error, read};

backend_tests!(
    steady_state_authentication_makes_no_database_query,
    unknown_keys_reach_the_database_once_and_malformed_keys_never,
    changes_through_the_api_apply_to_the_next_request_of_a_cached_key,
    a_cached_key_still_expires_on_the_second,
    a_cached_retrieve_shows_every_change_and_never_an_older_last_used_at,
);

const PATH: &str = "/v1/organization/admin_api_keys";
/// How long another replica may take to honour a change (the bound).
const PROPAGATION: Duration = Duration::from_secs(1);

/// A new key with `scopes`: (id, value).
async fn key_with(app: &TestApp, scopes: &[&str]) -> (String, String) {
    let key = app
        .create_key(json!({ "name": "cached", "scopes": scopes }))
        .await;
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

async fn retrieve_as(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.request_as(key, Method::GET, &format!("{PATH}/{id}"))
        .send()
        .await
        .unwrap()
}

async fn post_as(app: &TestApp, key: &str, path: String, body: Value) -> reqwest::Response {
    app.request_as(key, Method::POST, &path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Retrieves `id` with `key` on `app` until a request is answered without a query (the first
/// fill may be voided by the notification of the key's creation); panics if none is.
async fn served_from_cache(app: &TestApp, key: &str, id: &str) {
    for _ in 0..20 {
        let before = app.queries();
        assert_eq!(retrieve_as(app, key, id).await.status(), StatusCode::OK);
        if app.queries() == before {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never served key {id} from its cache", app.address);
}

async fn steady_state_authentication_makes_no_database_query(app: TestApp) {
    let (id, key) = key_with(&app, &["admin_api_keys.read"]).await;
    served_from_cache(&app, &key, &id).await;

    // Authenticated, then refused by validation: nothing but authentication runs.
    let before = app.queries();
    for _ in 0..20 {
        let response = app
            .request_as(&key, Method::GET, &format!("{PATH}?limit=0"))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "limit=0").await;
    }
    assert_eq!(
        app.queries() - before,
        0,
        "authentication queried the database"
    );

    // Retrieving a key the replica has read before is served from memory too.
    let before = app.queries();
    for _ in 0..20 {
        assert_eq!(retrieve_as(&app, &key, &id).await.status(), StatusCode::OK);
    }
    assert_eq!(app.queries() - before, 0, "retrieve queried the database");
}

async fn a_cached_retrieve_shows_every_change_and_never_an_older_last_used_at(app: TestApp) {
    let (id, key) = key_with(&app, &["admin_api_keys.read"]).await;
    let path = format!("{PATH}/{id}");
    // Twice: on PostgreSQL the notification of the create may void the first fill.
    for _ in 0..2 {
        let (_, first) = read(app.get(&path).await).await;
        assert_eq!(first["last_used_at"], Value::Null);
    }

    app.clock.advance(10);
    assert_eq!(retrieve_as(&app, &key, &id).await.status(), StatusCode::OK);
    let (_, used) = read(app.get(&path).await).await;
    assert_eq!(
        used["last_used_at"],
        START + 10,
        "this replica's use shows at once"
    );
    app.flush_usage().await;
    let (_, flushed) = read(app.get(&path).await).await;
    assert_eq!(
        flushed["last_used_at"],
        START + 10,
        "went back after the flush"
    );

    let renamed = post_as(
        &app,
        &app.admin_key,
        path.clone(),
        json!({ "name": "renamed" }),
    );
    assert_eq!(renamed.await.status(), StatusCode::OK);
    let (_, shown) = read(app.get(&path).await).await;
    assert_eq!(shown["name"], "renamed");

    assert_eq!(app.delete(&path).await.status(), StatusCode::OK);
    assert_error(app.get(&path).await, StatusCode::NOT_FOUND, "deleted").await;
}

async fn unknown_keys_reach_the_database_once_and_malformed_keys_never(app: TestApp) {
    let invented = admin_api_keys::domain::secret::generate_key()
        .expose()
        .to_owned();
    let refused = || async {
        let response = retrieve_as(&app, &invented, &app.admin_key_id).await;
        let error = assert_error(response, StatusCode::UNAUTHORIZED, "invented key").await;
        assert_eq!(error["code"], "invalid_api_key");
    };
    // Until one try costs no query: on PostgreSQL the notification of the bootstrap key's
    // creation may still arrive and void the first fill.
    let started = app.queries();
    for _ in 0..20 {
        let before = app.queries();
        refused().await;
        if app.queries() == before {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        app.queries() - started <= 2,
        "the unknown hash was not remembered"
    );
    let before = app.queries();
    for _ in 0..20 {
        refused().await;
    }
    assert_eq!(
        app.queries() - before,
        0,
        "a known-unknown key reached the database"
    );

    let before = app.queries();
    let mut mistyped = invented.clone().into_bytes();
    mistyped[20] = if mistyped[20] == b'a' { b'b' } else { b'a' };
    let mistyped = String::from_utf8(mistyped).unwrap();
    for token in ["sk-admin-short", mistyped.as_str(), "sk-proj-abc"] {
        let response = retrieve_as(&app, token, &app.admin_key_id).await;
        assert_error(response, StatusCode::UNAUTHORIZED, token).await;
    }
    assert_eq!(
        app.queries() - before,
        0,
        "malformed keys reached the database"
    );
}

async fn changes_through_the_api_apply_to_the_next_request_of_a_cached_key(app: TestApp) {
    let all = [
        "admin_api_keys.read",
        "admin_api_keys.write",
        "audit_logs.read",
    ];
    let (disabled_id, disabled) = key_with(&app, &all).await;
    let (rescoped_id, rescoped) = key_with(&app, &all).await;
    let (deleted_id, deleted) = key_with(&app, &all).await;
    let (rotated_id, rotated) = key_with(&app, &all).await;
    for (id, key) in [
        (&disabled_id, &disabled),
        (&rescoped_id, &rescoped),
        (&deleted_id, &deleted),
        (&rotated_id, &rotated),
    ] {
        assert_eq!(retrieve_as(&app, key, id).await.status(), StatusCode::OK);
    }

    let boot = &app.admin_key;
    let changed = post_as(
        &app,
        boot,
        format!("{PATH}/{disabled_id}"),
        json!({ "enabled": false }),
    );
    assert_eq!(changed.await.status(), StatusCode::OK);
    let error = assert_error(
        retrieve_as(&app, &disabled, &disabled_id).await,
        StatusCode::UNAUTHORIZED,
        "disabled",
    )
    .await;
    assert_eq!(error["code"], "api_key_disabled");

    let changed = post_as(
        &app,
        boot,
        format!("{PATH}/{rescoped_id}"),
        json!({ "scopes": ["audit_logs.read"] }),
    );
    assert_eq!(changed.await.status(), StatusCode::OK);
    let error = assert_error(
        retrieve_as(&app, &rescoped, &rescoped_id).await,
        StatusCode::FORBIDDEN,
        "rescoped",
    )
    .await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.read");

    let removed = app.delete(&format!("{PATH}/{deleted_id}")).await;
    assert_eq!(removed.status(), StatusCode::OK);
    let error = assert_error(
        retrieve_as(&app, &deleted, &rotated_id).await,
        StatusCode::UNAUTHORIZED,
        "deleted",
    )
    .await;
    assert_eq!(error["code"], "invalid_api_key");

    let (status, new) =
        read(post_as(&app, boot, format!("{PATH}/{rotated_id}/rotate"), json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{new}");
    let error = assert_error(
        retrieve_as(&app, &rotated, &rotated_id).await,
        StatusCode::UNAUTHORIZED,
        "rotated away",
    )
    .await;
    assert_eq!(error["code"], "api_key_expired");
    let new_key = new["value"].as_str().unwrap();
    assert_eq!(
        retrieve_as(&app, new_key, &rotated_id).await.status(),
        StatusCode::OK
    );
}

async fn a_cached_key_still_expires_on_the_second(app: TestApp) {
    let key = app
        .create_key(json!({ "name": "short-lived", "expires_in_seconds": 60 }))
        .await;
    let (id, value) = (key["id"].as_str().unwrap(), key["value"].as_str().unwrap());
    app.clock.advance(59);
    assert_eq!(retrieve_as(&app, value, id).await.status(), StatusCode::OK);
    app.clock.advance(1);
    let error = assert_error(
        retrieve_as(&app, value, id).await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;
    assert_eq!(error["code"], "api_key_expired");
}

/// Runs `check` every 10 ms until it holds; panics naming `what` once [`PROPAGATION`] has
/// passed. Returns how long it took.
async fn within_propagation(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < PROPAGATION,
            "{what}: not seen on the other replica after {PROPAGATION:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// Sends requests with `key` to `replica` until one is refused with 401; panics after
/// [`PROPAGATION`]. Returns how long it took.
async fn wait_for_rejection(replica: &TestApp, key: &str, id: &str, what: &str) -> Duration {
    within_propagation(what, async || {
        retrieve_as(replica, key, id).await.status() == StatusCode::UNAUTHORIZED
    })
    .await
}

/// Runs `sql` on the app's database outside the service, as an operator would.
async fn psql(app: &TestApp, sql: String) {
    let url = app.database_url.clone();
    actix_web::web::block(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}

/// How many invalidation listeners are connected to the app's database.
async fn listeners(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let url = app.database_url.clone();
    actix_web::web::block(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'"
        ))
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
    })
    .await
    .unwrap()
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn changes_on_one_replica_reach_another_within_a_second() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let all = [
        "admin_api_keys.read",
        "admin_api_keys.write",
        "audit_logs.read",
    ];
    let (deleted_id, deleted) = key_with(&a, &all).await;
    let (disabled_id, disabled) = key_with(&a, &all).await;
    let (rotated_id, rotated) = key_with(&a, &all).await;
    let (rescoped_id, rescoped) = key_with(&a, &all).await;
    for (id, key) in [
        (&deleted_id, &deleted),
        (&disabled_id, &disabled),
        (&rotated_id, &rotated),
        (&rescoped_id, &rescoped),
    ] {
        served_from_cache(&b, key, id).await;
    }

    let removed = a.delete(&format!("{PATH}/{deleted_id}")).await;
    assert_eq!(removed.status(), StatusCode::OK);
    let took = wait_for_rejection(&b, &deleted, &deleted_id, "delete").await;
    eprintln!("delete reached the other replica in {took:?}");

    let boot = &a.admin_key;
    let off = post_as(
        &a,
        boot,
        format!("{PATH}/{disabled_id}"),
        json!({ "enabled": false }),
    );
    assert_eq!(off.await.status(), StatusCode::OK);
    wait_for_rejection(&b, &disabled, &disabled_id, "disable").await;

    let rotation = post_as(&a, boot, format!("{PATH}/{rotated_id}/rotate"), json!({}));
    assert_eq!(rotation.await.status(), StatusCode::OK);
    wait_for_rejection(&b, &rotated, &rotated_id, "rotate").await;

    let narrowed = post_as(
        &a,
        boot,
        format!("{PATH}/{rescoped_id}"),
        json!({ "scopes": ["audit_logs.read"] }),
    );
    assert_eq!(narrowed.await.status(), StatusCode::OK);
    within_propagation("scope change", async || {
        retrieve_as(&b, &rescoped, &rescoped_id).await.status() == StatusCode::FORBIDDEN
    })
    .await;

    // Retrieved keys are cached too: a rename on A shows on B.
    let path = format!("{PATH}/{rotated_id}");
    served_from_cache(&b, &b.admin_key, &rotated_id).await;
    let (_, before) = read(b.get(&path).await).await;
    assert_eq!(before["name"], "cached");
    let renamed = post_as(&a, boot, path.clone(), json!({ "name": "renamed on a" }));
    assert_eq!(renamed.await.status(), StatusCode::OK);
    within_propagation("rename", async || {
        read(b.get(&path).await).await.1["name"] == "renamed on a"
    })
    .await;
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_change_made_directly_in_the_database_reaches_every_replica() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let (id, key) = key_with(&a, &["admin_api_keys.read"]).await;
    for replica in [&a, &b] {
        served_from_cache(replica, &key, &id).await;
    }
    psql(
        &a,
        format!("UPDATE admin_api_keys SET enabled = FALSE WHERE id = '{id}'"),
    )
    .await;
    for (replica, name) in [(&a, "a"), (&b, "b")] {
        wait_for_rejection(replica, &key, &id, name).await;
    }
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_replica_that_lost_its_listener_stops_trusting_its_cache() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let (first_id, first) = key_with(&a, &["admin_api_keys.read"]).await;
    let (second_id, second) = key_with(&a, &["admin_api_keys.read"]).await;
    for (id, key) in [(&first_id, &first), (&second_id, &second)] {
        served_from_cache(&b, key, id).await;
    }
    assert_eq!(listeners(&a).await, 2);

    // Cut every listener, then change a key while nobody hears about it.
    psql(
        &a,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'"
        ),
    )
    .await;
    psql(
        &a,
        format!("DELETE FROM admin_api_keys WHERE id = '{first_id}'"),
    )
    .await;
    wait_for_rejection(&b, &first, &first_id, "change while the listener was down").await;

    // The listeners come back and notifications flow again.
    let started = Instant::now();
    while listeners(&a).await < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no reconnect");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    served_from_cache(&b, &second, &second_id).await;
    let removed = a.delete(&format!("{PATH}/{second_id}")).await;
    assert_eq!(removed.status(), StatusCode::OK);
    wait_for_rejection(&b, &second, &second_id, "change after reconnect").await;
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_replica_never_shows_an_older_last_used_at_after_listing_a_newer_one() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let (id, key) = key_with(&a, &["admin_api_keys.read"]).await;
    served_from_cache(&b, &b.admin_key, &id).await;

    // A uses the key and writes the use; B's cached view does not hear of it.
    a.clock.advance(10);
    assert_eq!(retrieve_as(&a, &key, &id).await.status(), StatusCode::OK);
    a.flush_usage().await;

    let listed = b.list("limit=100").await;
    let row = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == id.as_str())
        .expect("the key is listed")
        .clone();
    assert_eq!(row["last_used_at"], START + 10);
    let (_, shown) = read(b.get(&format!("{PATH}/{id}")).await).await;
    assert_eq!(
        shown["last_used_at"],
        START + 10,
        "retrieve went back after the list"
    );
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_rewritten_hash_or_a_truncate_reaches_every_replica() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let b = a.spawn_replica().await;
    let (id, key) = key_with(&a, &["admin_api_keys.read"]).await;
    served_from_cache(&b, &key, &id).await;

    // An operator moves the key to a new secret that B has already seen refused.
    let replacement = admin_api_keys::domain::secret::generate_key();
    let refused = retrieve_as(&b, replacement.expose(), &id).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    psql(
        &a,
        format!(
            "UPDATE admin_api_keys SET key_hash = '{}' WHERE id = '{id}'",
            replacement.hash()
        ),
    )
    .await;
    wait_for_rejection(&b, &key, &id, "old secret").await;
    within_propagation("the new secret", async || {
        retrieve_as(&b, replacement.expose(), &id).await.status() == StatusCode::OK
    })
    .await;

    served_from_cache(&b, replacement.expose(), &id).await;
    psql(&a, "TRUNCATE admin_api_keys CASCADE".to_owned()).await;
    wait_for_rejection(&b, replacement.expose(), &id, "truncate").await;
}

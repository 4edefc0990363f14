//! The set of live key hashes: a well-formed key that was never issued costs no lookup and no
//! one's budget, so it cannot lock out a real key, nor a resource server that introspects it;
//! keys made and deleted, here or on another replica, enter and leave the set.

use std::time::{Duration, Instant};

use admin_api_keys::cache::Presence;
use admin_api_keys::cache::keyset::prefix_of;
use admin_api_keys::config::Settings;
use admin_api_keys::domain::secret::digest_key;
use admin_api_keys::lookup_limit::LookupLimit;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(settings = small_budget;
    invented_keys_never_reach_the_database_nor_spend_any_budget,
    invented_keys_never_lock_out_a_real_key_that_aged_out_of_the_cache,
    a_resource_server_is_never_locked_out_by_invented_tokens_it_introspects,
    a_key_made_through_the_api_is_in_the_set_at_once,
    a_deleted_key_leaves_the_set_and_is_refused_without_a_lookup,
    the_keys_of_a_deleted_user_leave_the_set,
    a_key_made_behind_the_services_back_works_on_its_first_request,
);

/// Lookups a client may make at once in these tests: small, so that any charge shows.
const BURST: usize = 2;
const KEYS: &str = "/v1/organization/admin_api_keys";
/// How long an entry of the auth cache lives (the default TTL), plus one second.
const PAST_THE_TTL: i64 = 31;

fn small_budget(settings: &mut Settings) {
    settings.lookup_limit = LookupLimit {
        per_minute: 1,
        burst: BURST as u32,
    };
}

/// A well-formed key that was never issued.
fn invented() -> String {
    admin_api_keys::domain::secret::generate_key()
        .expose()
        .to_owned()
}

/// What `app`'s set of live hashes says of the key `value`.
fn presence(app: &TestApp, value: &str) -> Presence {
    app.state.cache.presence(prefix_of(&digest_key(value)))
}

/// Retrieves the bootstrap key with `key`.
async fn present(app: &TestApp, key: &str) -> reqwest::Response {
    let path = format!("{KEYS}/{}", app.admin_key_id);
    app.request_as(key, Method::GET, &path)
        .send()
        .await
        .expect("request sent")
}

async fn assert_refused(response: reqwest::Response, context: &str) {
    let error = assert_error(response, StatusCode::UNAUTHORIZED, context).await;
    assert_eq!(error["code"], "invalid_api_key", "{context}");
}

/// Introspects `token` with the bootstrap key (the resource server here).
async fn introspect(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .request(Method::POST, "/v1/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", token)]).unwrap())
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn invented_keys_never_reach_the_database_nor_spend_any_budget(app: TestApp) {
    let before = app.queries();
    for n in 0..5 * BURST {
        assert_refused(present(&app, &invented()).await, &format!("key {n}")).await;
    }
    let forward = app
        .request_as(
            &invented(),
            Method::GET,
            "/v1/forward-auth?permission=billing:read",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forward.status(), StatusCode::UNAUTHORIZED, "forward auth");
    assert_eq!(
        app.queries(),
        before,
        "an invented key reached the database"
    );
    assert_eq!(app.state.lookup_limit.tracked(), 0, "a budget was spent");
}

async fn invented_keys_never_lock_out_a_real_key_that_aged_out_of_the_cache(app: TestApp) {
    let admin_key = app.admin_key.clone();
    assert_eq!(present(&app, &admin_key).await.status(), StatusCode::OK);
    for n in 0..5 * BURST {
        assert_refused(present(&app, &invented()).await, &format!("key {n}")).await;
    }
    // Out of the cache: only a lookup can tell the key is real, and it is made.
    app.clock.advance(PAST_THE_TTL);
    let before = app.queries();
    assert_eq!(
        present(&app, &admin_key).await.status(),
        StatusCode::OK,
        "a real key was locked out by invented ones from its address"
    );
    assert!(app.queries() > before, "the key was not looked up again");
}

async fn a_resource_server_is_never_locked_out_by_invented_tokens_it_introspects(app: TestApp) {
    let made = app.create_named("a user's key").await;
    let users_key = made["value"].as_str().unwrap().to_owned();
    for n in 0..5 * BURST {
        let (status, body) = introspect(&app, &invented()).await;
        assert_eq!(status, StatusCode::OK, "token {n}: {body}");
        assert_eq!(body["active"], false, "token {n}");
    }
    // Even while the set cannot vouch for absences (a listener that is down), the tokens are
    // the users' and are charged to nobody.
    app.state.cache.doubt_key_set(true);
    for n in 0..5 * BURST {
        let (status, body) = introspect(&app, &invented()).await;
        assert_eq!(status, StatusCode::OK, "token {n}, set in doubt: {body}");
        assert_eq!(body["active"], false, "token {n}, set in doubt");
    }
    app.state.cache.doubt_key_set(false);
    assert_eq!(
        app.state.lookup_limit.tracked(),
        0,
        "the resource server was charged"
    );

    app.clock.advance(PAST_THE_TTL);
    let (status, body) = introspect(&app, &users_key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true, "a real token aged out of the cache");
    assert_eq!(present(&app, &app.admin_key).await.status(), StatusCode::OK);
}

async fn a_key_made_through_the_api_is_in_the_set_at_once(app: TestApp) {
    let made = app.create_named("new").await;
    let value = made["value"].as_str().unwrap().to_owned();
    assert_eq!(presence(&app, &value), Presence::Live);
    assert_eq!(
        presence(&app, &app.admin_key),
        Presence::Live,
        "loaded at start"
    );
    assert_eq!(presence(&app, &invented()), Presence::Absent);
    assert_eq!(present(&app, &value).await.status(), StatusCode::OK);

    let id = made["id"].as_str().unwrap();
    let rotated = app
        .send_as(
            &app.admin_key,
            Method::POST,
            &format!("{KEYS}/{id}/rotate"),
            Some(&json!({})),
        )
        .await;
    let (status, rotated) = read(rotated).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let successor = rotated["value"].as_str().unwrap();
    assert_eq!(
        presence(&app, successor),
        Presence::Live,
        "a rotation's new key"
    );
}

async fn a_deleted_key_leaves_the_set_and_is_refused_without_a_lookup(app: TestApp) {
    let made = app.create_named("doomed").await;
    let (id, value) = (
        made["id"].as_str().unwrap(),
        made["value"].as_str().unwrap().to_owned(),
    );
    assert_eq!(present(&app, &value).await.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&format!("{KEYS}/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(presence(&app, &value), Presence::Absent);
    let before = app.queries();
    assert_refused(present(&app, &value).await, "deleted").await;
    assert_eq!(app.queries(), before, "a deleted key was looked up");
}

async fn the_keys_of_a_deleted_user_leave_the_set(app: TestApp) {
    let member = app.add_member("owner").await;
    let (_, first) = app.key_for(&member, None).await;
    let (_, second) = app.key_for(&member, None).await;
    for value in [&first, &second] {
        assert_eq!(presence(&app, value), Presence::Live);
    }
    let deleted = app
        .request(Method::DELETE, &format!("/v1/organization/users/{member}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    for value in [&first, &second] {
        assert_eq!(presence(&app, value), Presence::Absent);
    }
}

/// Two replicas on one PostgreSQL database; `None` without `TEST_DATABASE_URL`.
async fn replicas() -> Option<(TestApp, TestApp)> {
    let a = TestApp::spawn(Backend::Postgres).await?;
    let b = a.spawn_replica().await;
    Some((a, b))
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_key_made_on_one_replica_works_on_another_at_once() {
    let Some((a, b)) = replicas().await else {
        return;
    };
    for n in 0..3 {
        let made = a.create_named(&format!("made on a {n}")).await;
        let value = made["value"].as_str().unwrap().to_owned();
        // Straight to the other replica: its listener may not have heard of the key yet, and
        // the request waits for it rather than answer 401 or spend a budget on a lookup.
        let started = Instant::now();
        let status = present(&b, &value).await.status();
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK, "key {n} on b after {took:?}");
        assert!(took < Duration::from_secs(1), "key {n} took {took:?}");
    }
    assert_eq!(b.state.lookup_limit.tracked(), 0, "a lookup was charged");
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_key_deleted_on_one_replica_leaves_the_set_of_another() {
    let Some((a, b)) = replicas().await else {
        return;
    };
    let made = a.create_named("doomed").await;
    let (id, value) = (
        made["id"].as_str().unwrap(),
        made["value"].as_str().unwrap().to_owned(),
    );
    assert_eq!(present(&b, &value).await.status(), StatusCode::OK);
    assert_eq!(presence(&b, &value), Presence::Live);
    assert_eq!(
        a.delete(&format!("{KEYS}/{id}")).await.status(),
        StatusCode::OK
    );
    let started = Instant::now();
    while presence(&b, &value) != Presence::Absent {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the delete did not reach b's set within a second"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let before = b.queries();
    assert_refused(present(&b, &value).await, "deleted on a").await;
    assert_eq!(b.queries(), before, "b looked the deleted key up");
}

#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn a_truncated_table_is_reloaded_into_every_set() {
    let Some((a, b)) = replicas().await else {
        return;
    };
    let made = a.create_named("gone with the table").await;
    let value = made["value"].as_str().unwrap().to_owned();
    let url = a.database_url.clone();
    actix_web::web::block(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query("TRUNCATE admin_api_keys CASCADE")
            .execute(&mut conn)
            .unwrap();
    })
    .await
    .unwrap();
    let started = Instant::now();
    for replica in [&a, &b] {
        while presence(replica, &value) != Presence::Absent {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the truncate did not reach {}",
                replica.address
            );
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(a.state.cache.key_set_size().0, 0);
}

/// `bootstrap` (or the command line) in another process while the server runs: on SQLite the
/// watcher notices the commit, on PostgreSQL the trigger announces it; either way the new key
/// works on its very first request, and an invented one is still refused without a lookup.
async fn a_key_made_behind_the_services_back_works_on_its_first_request(app: TestApp) {
    use admin_api_keys::domain::{Email, KeyName};
    let url = app.database_url.clone();
    let made = actix_web::web::block(move || {
        // A connection of its own, as another process would have.
        let pool = admin_api_keys::db::connect_and_migrate(
            &url,
            &admin_api_keys::db::PoolOptions::default(),
            admin_api_keys::db::QueryCounter::default(),
        )
        .expect("the database opens");
        let mut conn = pool.get().expect("a connection");
        admin_api_keys::services::bootstrap::create_owner_with_key(
            &mut conn,
            &KeyName::parse("owner", "Elsewhere").unwrap(),
            Some(&Email::parse("email", "elsewhere@example.com").unwrap()),
            &KeyName::parse("name", "made elsewhere").unwrap(),
            crate::helpers::START,
        )
    })
    .await
    .unwrap()
    .expect("bootstrap succeeds");
    let response = present(&app, made.secret.expose()).await;
    assert_eq!(response.status(), StatusCode::OK, "the first request");
    let before = app.queries();
    assert_refused(present(&app, &invented()).await, "invented").await;
    assert_eq!(app.queries(), before, "an invented key costs no lookup");
}

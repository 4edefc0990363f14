use diesel::prelude::*;
use reqwest::Method;

use admin_api_keys::schema::admin_api_keys;

use crate::helpers::{START, TestApp, read};

backend_tests!(
    last_used_at_is_null_until_the_key_is_used_then_shows_at_once,
    last_used_at_is_written_in_a_batch_not_per_request,
    flush_never_moves_last_used_at_backwards,
    a_flush_writes_every_pending_key_in_one_statement,
);

async fn stored_last_used(app: &TestApp, id: &str) -> Option<i64> {
    let id = id.to_owned();
    app.with_db(move |conn| {
        admin_api_keys::table
            .filter(admin_api_keys::id.eq(id))
            .select(admin_api_keys::last_used_at)
            .first::<Option<i64>>(conn)
            .unwrap()
    })
    .await
}

async fn last_used_at_is_null_until_the_key_is_used_then_shows_at_once(app: TestApp) {
    let key = app.create_named("worker").await;
    let (id, value) = (key["id"].as_str().unwrap(), key["value"].as_str().unwrap());
    let path = format!("/v1/organization/admin_api_keys/{id}");
    let (_, before) = read(app.get(&path).await).await;
    assert_eq!(before["last_used_at"], serde_json::Value::Null);

    app.clock.advance(30);
    app.request_as(value, Method::GET, "/v1/organization/admin_api_keys")
        .send()
        .await
        .unwrap();
    let (_, after) = read(app.get(&path).await).await;

    assert_eq!(after["last_used_at"], START + 30);
}

async fn last_used_at_is_written_in_a_batch_not_per_request(app: TestApp) {
    let key = app.create_named("worker").await;
    let (id, value) = (key["id"].as_str().unwrap(), key["value"].as_str().unwrap());
    for _ in 0..3 {
        app.clock.advance(5);
        let response = app
            .request_as(value, Method::GET, "/v1/organization/admin_api_keys")
            .send()
            .await;
        assert!(response.unwrap().status().is_success());
    }
    assert_eq!(
        stored_last_used(&app, id).await,
        None,
        "a request wrote to the database"
    );

    app.flush_usage().await;

    assert_eq!(stored_last_used(&app, id).await, Some(START + 15));
    assert_eq!(
        app.state.usage.pending_len(),
        0,
        "flushed uses stay pending"
    );
    let (_, shown) = read(
        app.get(&format!("/v1/organization/admin_api_keys/{id}"))
            .await,
    )
    .await;
    assert_eq!(shown["last_used_at"], START + 15);
}

async fn flush_never_moves_last_used_at_backwards(app: TestApp) {
    let id = app.admin_key_id.clone();
    app.clock.advance(100);
    app.get("/v1/organization/admin_api_keys").await;
    app.flush_usage().await;
    assert_eq!(stored_last_used(&app, &id).await, Some(START + 100));

    // Another replica with a slower view of time flushes an older use of the same key.
    app.state.usage.record(&id, START + 50);
    app.flush_usage().await;

    assert_eq!(stored_last_used(&app, &id).await, Some(START + 100));
}

async fn a_flush_writes_every_pending_key_in_one_statement(app: TestApp) {
    let mut keys = Vec::new();
    for n in 0..5 {
        let key = app.create_named(&format!("worker {n}")).await;
        keys.push((
            key["id"].as_str().unwrap().to_owned(),
            key["value"].as_str().unwrap().to_owned(),
        ));
    }
    for (n, (_, value)) in keys.iter().enumerate() {
        app.clock.set(START + 10 + n as i64);
        let response = app
            .request_as(
                value,
                Method::GET,
                "/v1/organization/admin_api_keys?limit=0",
            )
            .send()
            .await;
        assert_eq!(response.unwrap().status(), 400);
    }
    // A deleted key's pending use is skipped, not an error.
    let gone = &keys[0].0;
    app.delete(&format!("/v1/organization/admin_api_keys/{gone}"))
        .await;
    assert_eq!(
        app.state.usage.pending_len(),
        6,
        "five keys and the bootstrap key"
    );

    let before = app.queries();
    app.flush_usage().await;
    assert_eq!(
        app.queries() - before,
        1,
        "one statement for the whole batch"
    );

    assert_eq!(app.state.usage.pending_len(), 0);
    for (n, (id, _)) in keys.iter().enumerate().skip(1) {
        assert_eq!(
            stored_last_used(&app, id).await,
            Some(START + 10 + n as i64),
            "{id}"
        );
    }
}

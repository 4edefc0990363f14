use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, ids, read};

backend_tests!(
    list_returns_the_documented_envelope_oldest_first_by_default,
    list_defaults_to_20_and_reports_has_more,
    paging_with_limit_1_visits_exactly_one_full_page_in_both_orders,
    desc_is_the_reverse_of_asc_across_seconds_and_ties,
    a_page_past_the_end_is_empty_with_null_ids,
    list_accepts_limit_bounds_and_rejects_bad_params,
    list_rejects_an_after_id_that_does_not_exist,
    list_never_contains_key_values,
    a_list_shows_a_change_made_behind_the_service_at_once,
);

/// Makes `n` keys; every `per_second` keys share one `created_at` second.
async fn make_keys(app: &TestApp, n: usize, per_second: usize) -> Vec<String> {
    let mut made = Vec::new();
    for i in 0..n {
        if i > 0 && i % per_second == 0 {
            app.clock.advance(1);
        }
        made.push(
            app.create_named(&format!("key {i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    made
}

/// Follows `after` cursors with `limit` until `has_more` is false.
async fn walk(app: &TestApp, order: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_deref()
            .map_or(String::new(), |a| format!("&after={a}"));
        let page = app
            .list(&format!("order={order}&limit={limit}{cursor}"))
            .await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= limit);
        assert_eq!(
            page["first_id"].as_str(),
            page_ids.first().map(String::as_str)
        );
        assert_eq!(
            page["last_id"].as_str(),
            page_ids.last().map(String::as_str)
        );
        seen.extend(page_ids);
        if !page["has_more"].as_bool().unwrap() {
            return seen;
        }
        after = page["last_id"].as_str().map(str::to_owned);
        assert!(seen.len() < 1000, "paging does not terminate");
    }
}

async fn list_returns_the_documented_envelope_oldest_first_by_default(app: TestApp) {
    app.clock.advance(1);
    let newer = app.create_named("newer").await;

    let response = app.get("/v1/organization/admin_api_keys").await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, page) = read(response).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["object"], "list");
    assert_eq!(
        ids(&page),
        vec![
            app.admin_key_id.clone(),
            newer["id"].as_str().unwrap().to_owned()
        ]
    );
    assert_eq!(page["first_id"], app.admin_key_id.as_str());
    assert_eq!(page["last_id"], newer["id"]);
    assert_eq!(page["has_more"], false);
    assert_eq!(page["data"][0]["object"], "organization.admin_api_key");
    assert_eq!(page["data"][0]["owner"]["role"], "owner");
}

async fn list_defaults_to_20_and_reports_has_more(app: TestApp) {
    make_keys(&app, 20, 20).await; // 21 with the bootstrap key

    let first = app.list("").await;
    let rest = app
        .list(&format!("after={}", first["last_id"].as_str().unwrap()))
        .await;

    assert_eq!(ids(&first).len(), 20);
    assert_eq!(first["has_more"], true);
    assert_eq!(ids(&rest).len(), 1);
    assert_eq!(rest["has_more"], false);
}

async fn paging_with_limit_1_visits_exactly_one_full_page_in_both_orders(app: TestApp) {
    // 30 keys in 3 seconds: most neighbours tie on created_at.
    make_keys(&app, 30, 10).await;

    for order in ["asc", "desc"] {
        let full = ids(&app.list(&format!("order={order}&limit=100")).await);
        assert_eq!(full.len(), 31);

        assert_eq!(walk(&app, order, 1).await, full, "limit=1, order={order}");
        assert_eq!(walk(&app, order, 7).await, full, "limit=7, order={order}");
    }
}

async fn desc_is_the_reverse_of_asc_across_seconds_and_ties(app: TestApp) {
    app.clock.advance(1);
    make_keys(&app, 12, 4).await;

    let asc = ids(&app.list("order=asc&limit=100").await);
    let mut desc = ids(&app.list("order=desc&limit=100").await);
    desc.reverse();

    assert_eq!(asc, desc);
    assert_eq!(
        asc[0], app.admin_key_id,
        "the oldest key comes first in asc"
    );
}

async fn a_page_past_the_end_is_empty_with_null_ids(app: TestApp) {
    app.clock.advance(1);
    let last = app.create_named("last").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (order, after) in [("asc", last.as_str()), ("desc", app.admin_key_id.as_str())] {
        let page = app.list(&format!("order={order}&after={after}")).await;
        assert_eq!(page["data"], serde_json::json!([]), "{order}");
        assert_eq!(page["first_id"], Value::Null);
        assert_eq!(page["last_id"], Value::Null);
        assert_eq!(page["has_more"], false);
    }
}

async fn list_accepts_limit_bounds_and_rejects_bad_params(app: TestApp) {
    make_keys(&app, 2, 10).await;
    assert_eq!(ids(&app.list("limit=1").await).len(), 1);
    assert_eq!(ids(&app.list("limit=100").await).len(), 3);
    assert_eq!(
        ids(&app.list("limit=&order=").await).len(),
        3,
        "empty values mean defaults"
    );

    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("order=up", "order"),
        ("order=ASC", "order"),
    ];
    for (query, param) in cases {
        let response = app
            .get(&format!("/v1/organization/admin_api_keys?{query}"))
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
}

async fn list_rejects_an_after_id_that_does_not_exist(app: TestApp) {
    let deleted = app.create_named("gone").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/organization/admin_api_keys/{deleted}"))
        .await;

    for after in ["key_missing", deleted.as_str(), "bad%20id"] {
        let response = app
            .get(&format!("/v1/organization/admin_api_keys?after={after}"))
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, after).await;
        assert_eq!(error["param"], "after", "{after}");
    }
}

async fn list_never_contains_key_values(app: TestApp) {
    let created = app.create_named("secret holder").await;
    let value = created["value"].as_str().unwrap();

    let response = app.get("/v1/organization/admin_api_keys?limit=100").await;
    let text = response.text().await.unwrap();

    assert!(!text.contains(value), "the plaintext appeared in a list");
    assert!(
        !text.contains(&app.admin_key),
        "the bootstrap plaintext appeared in a list"
    );
    assert!(!text.contains("\"value\""), "{text}");
}

/// A list page reads every column a change can move from the database, so it never serves a
/// cached body that disagrees with the row (here: a change no notification announces on
/// SQLite, and that a replica could hear of late on PostgreSQL).
async fn a_list_shows_a_change_made_behind_the_service_at_once(app: TestApp) {
    let id = app.create_named("before").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = app.list("limit=100").await;
    let shown = |page: &Value| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|key| key["id"] == id.as_str())
            .cloned()
            .expect("the key is listed")
    };
    assert_eq!(shown(&first)["name"], "before");

    let target = id.clone();
    app.with_db(move |conn| {
        use ::admin_api_keys::schema::admin_api_keys as keys;
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        diesel::update(keys::table.filter(keys::id.eq(target)))
            .set((keys::name.eq("after"), keys::enabled.eq(false)))
            .execute(conn)
            .unwrap();
    })
    .await;

    let key = shown(&app.list("limit=100").await);
    assert_eq!(key["name"], "after");
    assert_eq!(key["enabled"], false);
    let disabled = app.list("status=disabled").await;
    assert_eq!(ids(&disabled), vec![id.clone()]);
    assert_eq!(disabled["data"][0]["enabled"], false, "{disabled}");

    // The page compares each key's revision: a trigger moves it for any change but one to
    // last_used_at alone (the usage flush's), which the page compares by itself.
    let revision = |id: String| {
        app.with_db(move |conn| {
            use ::admin_api_keys::schema::admin_api_keys as keys;
            use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
            keys::table
                .filter(keys::id.eq(id))
                .select(keys::revision)
                .first::<i64>(conn)
                .unwrap()
        })
    };
    let before = revision(id.clone()).await;
    let target = id.clone();
    app.with_db(move |conn| {
        use ::admin_api_keys::schema::admin_api_keys as keys;
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        diesel::update(keys::table.filter(keys::id.eq(target)))
            .set(keys::last_used_at.eq(Some(1_900_000_000_i64)))
            .execute(conn)
            .unwrap();
    })
    .await;
    assert_eq!(revision(id.clone()).await, before, "last_used_at alone");
    assert_eq!(
        shown(&app.list("limit=100").await)["last_used_at"],
        1_900_000_000_i64
    );
    let target = id.clone();
    app.with_db(move |conn| {
        use ::admin_api_keys::schema::admin_api_keys as keys;
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        diesel::update(keys::table.filter(keys::id.eq(target)))
            .set(keys::mcp.eq(r#"{"active":false}"#))
            .execute(conn)
            .unwrap();
    })
    .await;
    assert_eq!(
        revision(id.clone()).await,
        before + 1,
        "the MCP policy changed"
    );
    assert_eq!(shown(&app.list("limit=100").await)["mcp"]["active"], false);
}

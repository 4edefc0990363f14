//! Page-numbered listing of admin keys (seed 002's `page`, `limit`, `search`): `page` instead
//! of `after`, with `page` and `total` in the answer, bounded in depth.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, ids};

backend_tests!(
    numbered_pages_walk_the_keys_in_the_order_the_cursor_does,
    numbered_pages_count_only_the_keys_that_match_search_and_status,
    page_and_after_together_are_refused_naming_both,
    page_numbers_below_one_or_past_the_deepest_page_are_refused,
    cursor_pages_carry_no_page_or_total,
);

const KEYS: &str = "/v1/organization/admin_api_keys";

/// Makes `names` in order (the bootstrap key is the oldest); returns every key id, oldest first.
async fn keys_named(app: &TestApp, names: &[&str]) -> Vec<String> {
    for name in names {
        app.create_named(name).await;
    }
    ids(&app.list("limit=100").await)
}

async fn numbered_pages_walk_the_keys_in_the_order_the_cursor_does(app: TestApp) {
    let all = keys_named(&app, &["a", "b", "c", "d", "e"]).await;
    assert_eq!(all.len(), 6);

    for (number, expected, has_more) in [
        (1, &all[0..2], true),
        (2, &all[2..4], true),
        (3, &all[4..6], false),
    ] {
        let page = app.list(&format!("limit=2&page={number}")).await;

        assert_eq!(ids(&page), expected, "page {number}");
        assert_eq!(page["page"], number, "page {number}: {page}");
        assert_eq!(page["total"], 6, "page {number}");
        assert_eq!(page["has_more"], has_more, "page {number}");
        assert_eq!(page["first_id"], expected[0].as_str(), "page {number}");
        assert_eq!(page["last_id"], expected[1].as_str(), "page {number}");
    }
    let beyond = app.list("limit=2&page=4").await;
    assert_eq!(
        ids(&beyond),
        Vec::<String>::new(),
        "past the last page: empty"
    );
    assert_eq!(
        (beyond["total"].clone(), beyond["has_more"].clone()),
        (6.into(), false.into())
    );

    let newest_first = app.list("limit=4&page=1&order=desc").await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(
        ids(&newest_first),
        &reversed[0..4],
        "order applies to numbered pages"
    );
    let default_limit = app.list("page=1").await;
    assert_eq!(ids(&default_limit), all, "20 a page by default");
}

async fn numbered_pages_count_only_the_keys_that_match_search_and_status(app: TestApp) {
    keys_named(&app, &["deploy one", "Deploy two", "other", "deploy three"]).await;
    let disabled = app.create_named("deploy disabled").await;
    let path = format!("{KEYS}/{}", disabled["id"].as_str().unwrap());
    app.post_json(&path, &serde_json::json!({ "enabled": false }))
        .await;

    let page = app.list("search=deploy&limit=2&page=2").await;
    assert_eq!(
        page["total"], 4,
        "four names contain `deploy`, whatever the case: {page}"
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], false);
    let active = app.list("search=deploy&status=active&page=1").await;
    assert_eq!(active["total"], 3, "{active}");
    let redacted = disabled["redacted_value"].as_str().unwrap();
    let by_value = app
        .list(&format!("search={}&page=1", &redacted[..12]))
        .await;
    assert!(
        ids(&by_value).contains(&disabled["id"].as_str().unwrap().to_owned()),
        "{by_value}"
    );
    let none = app.list("search=nothing-like-this&page=1").await;
    assert_eq!(
        (none["total"].clone(), ids(&none).len()),
        (Value::from(0), 0)
    );
}

async fn page_and_after_together_are_refused_naming_both(app: TestApp) {
    let all = keys_named(&app, &["a"]).await;

    let response = app.get(&format!("{KEYS}?page=1&after={}", all[0])).await;

    let error = assert_error(response, StatusCode::BAD_REQUEST, "page with after").await;
    assert_eq!(error["param"], "page");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`page`") && message.contains("`after`"),
        "{message}"
    );
}

async fn page_numbers_below_one_or_past_the_deepest_page_are_refused(app: TestApp) {
    let cases = [
        ("page=0", "zero"),
        ("page=-1", "negative"),
        ("page=one", "not a number"),
        ("page=1.5", "not whole"),
        ("page=1&page=2", "given twice"),
        ("limit=100&page=102", "10,100 keys deep"),
        ("limit=20&page=502", "10,020 keys deep"),
        ("page=99999999999999999999", "too large for a number"),
    ];
    for (query, why) in cases {
        let error = assert_error(
            app.get(&format!("{KEYS}?{query}")).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
        assert_eq!(error["param"], "page", "{why}: {error}");
    }
    for query in [
        "limit=100&page=101",
        "limit=20&page=501",
        "limit=1&page=10001",
    ] {
        let page = app.list(query).await;
        assert_eq!(
            page["total"], 1,
            "{query}: the deepest page is allowed, and empty here"
        );
    }
}

async fn cursor_pages_carry_no_page_or_total(app: TestApp) {
    let all = keys_named(&app, &["a", "b"]).await;

    for query in ["limit=1".to_owned(), format!("limit=1&after={}", all[0])] {
        let page = app.list(&query).await;
        let fields = page.as_object().unwrap();
        assert!(
            !fields.contains_key("page") && !fields.contains_key("total"),
            "{query}: {page}"
        );
    }
}

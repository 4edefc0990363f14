//! `search` and `status` filters on the list, alone and with keyset pagination.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids};

backend_tests!(
    search_matches_name_substring_any_case_exact_id_and_redacted_prefix,
    search_composes_with_cursor_paging_in_both_orders,
    search_treats_like_wildcards_literally,
    status_filter_narrows_to_active_expired_or_disabled,
    bad_status_or_search_is_a_400,
);

fn id_of(key: &Value) -> String {
    key["id"].as_str().unwrap().to_owned()
}

async fn search_matches_name_substring_any_case_exact_id_and_redacted_prefix(app: TestApp) {
    app.clock.advance(1);
    let deploy = app.create_named("Deploy Pipeline").await;
    let other = app.create_named("billing export").await;

    let by_name = ids(&app.list("search=pIPEline").await);
    let by_id = ids(&app.list(&format!("search={}", id_of(&other))).await);
    let redacted = other["redacted_value"].as_str().unwrap();
    let by_redacted = ids(&app
        .list(&format!("search={}", &redacted[..redacted.len() - 1]))
        .await);

    assert_eq!(by_name, vec![id_of(&deploy)]);
    assert_eq!(by_id, vec![id_of(&other)]);
    assert!(by_redacted.contains(&id_of(&other)), "{by_redacted:?}");
    assert!(ids(&app.list("search=no such thing").await).is_empty());
}

async fn search_composes_with_cursor_paging_in_both_orders(app: TestApp) {
    let mut wanted = Vec::new();
    for i in 0..9 {
        if i % 3 == 0 {
            app.clock.advance(1);
        }
        let key = app
            .create_named(&format!(
                "{} {i}",
                if i % 2 == 0 { "ci-runner" } else { "other" }
            ))
            .await;
        if i % 2 == 0 {
            wanted.push(id_of(&key));
        }
    }
    for order in ["asc", "desc"] {
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let page = app
                .list(&format!("search=CI-RUN&limit=2&order={order}{after}"))
                .await;
            seen.extend(ids(&page));
            if page["has_more"] == false {
                break;
            }
            after = format!("&after={}", page["last_id"].as_str().unwrap());
        }
        // The unfiltered page in the same order, narrowed to the matching keys.
        let expected: Vec<String> = ids(&app.list(&format!("limit=100&order={order}")).await)
            .into_iter()
            .filter(|id| wanted.contains(id))
            .collect();
        assert_eq!(expected.len(), wanted.len());
        assert_eq!(seen, expected, "order={order}");
    }
}

async fn search_treats_like_wildcards_literally(app: TestApp) {
    let percent = app.create_named("100% uptime").await;
    app.create_named("1000 uptime").await;

    assert_eq!(ids(&app.list("search=100%25").await), vec![id_of(&percent)]);
    assert!(
        ids(&app.list("search=_").await).is_empty(),
        "_ matched any character"
    );
}

async fn status_filter_narrows_to_active_expired_or_disabled(app: TestApp) {
    let expiring = app
        .create_key(json!({ "name": "expiring", "expires_in_seconds": 5 }))
        .await;
    let disabled = app.create_named("disabled").await;
    let response = app
        .request(
            Method::POST,
            &format!("/v1/organization/admin_api_keys/{}", id_of(&disabled)),
        )
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.clock.advance(5);

    assert_eq!(
        ids(&app.list("status=expired").await),
        vec![id_of(&expiring)]
    );
    assert_eq!(
        ids(&app.list("status=disabled").await),
        vec![id_of(&disabled)]
    );
    assert_eq!(
        ids(&app.list("status=active").await),
        vec![app.admin_key_id.clone()]
    );
    assert_eq!(
        ids(&app.list("status=active&search=expiring").await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app.list("").await).len(),
        3,
        "expired and disabled keys stay listed"
    );
}

async fn bad_status_or_search_is_a_400(app: TestApp) {
    let long = "x".repeat(257);
    for (query, param) in [
        ("status=revoked", "status"),
        ("status=ACTIVE", "status"),
        (&*format!("search={long}"), "search"),
        ("search=a%00b", "search"),
    ] {
        let response = app
            .get(&format!("/v1/organization/admin_api_keys?{query}"))
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, query).await;
        assert_eq!(error["param"], param, "{query}");
    }
}

//! The budget of lookups that may find nothing, for when the set of live hashes cannot vouch
//! that a hash is absent (a PostgreSQL listener that is down; here `doubt_key_set`): a client
//! that presents many well-formed keys the database does not know gets 429 instead of more
//! lookups, while keys the service knows, hashes it already knows to be unknown and malformed
//! keys are answered as always. Invite tokens spend the same budget. What the set itself does
//! for unknown keys is in `key_set`.

use admin_api_keys::client_addr::TrustedProxies;
use admin_api_keys::config::Settings;
use admin_api_keys::lookup_limit::LookupLimit;
use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, assert_error};

backend_tests!(settings = small_budget;
    unknown_keys_beyond_the_budget_get_429_with_retry_after_and_make_no_query,
    keys_the_service_knows_keep_working_from_an_address_over_its_budget,
    a_hash_in_the_negative_cache_keeps_getting_401_after_the_budget_is_spent,
    malformed_keys_get_401_not_429_from_an_address_over_its_budget,
    the_budget_refills_when_retry_after_says,
    without_trusted_proxies_x_forwarded_for_is_ignored,
    unknown_invite_tokens_spend_the_same_budget,
);

mod behind_a_proxy {
    use super::*;

    backend_tests!(settings = small_budget_behind_a_proxy;
        each_client_behind_a_trusted_proxy_has_its_own_budget,
        ipv6_clients_share_the_budget_of_their_slash_64,
    );
}

mod unlimited {
    use super::*;

    backend_tests!(settings = no_limit; a_zero_rate_never_limits);
}

mod atomic {
    use super::*;

    backend_tests!(settings = small_budget;
        concurrent_lookups_of_unknown_keys_never_exceed_the_budget,
        a_lookup_that_finds_a_key_costs_no_budget,
    );
}

/// Lookups a client may make at once in these tests.
const BURST: usize = 3;
/// One lookup every 2 s once the burst is spent.
const PER_MINUTE: u32 = 30;

fn small_budget(settings: &mut Settings) {
    settings.lookup_limit = LookupLimit {
        per_minute: PER_MINUTE,
        burst: BURST as u32,
    };
}

fn small_budget_behind_a_proxy(settings: &mut Settings) {
    small_budget(settings);
    settings.trusted_proxies = "127.0.0.1".parse::<TrustedProxies>().unwrap();
}

fn no_limit(settings: &mut Settings) {
    small_budget(settings);
    settings.lookup_limit.per_minute = 0;
}

/// A well-formed key that was never issued: only the database can tell.
fn invented() -> String {
    admin_api_keys::domain::secret::generate_key()
        .expose()
        .to_owned()
}

/// Retrieves the bootstrap key with `key`, as a client behind `forwarded_for` (when given).
async fn present(app: &TestApp, key: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let path = format!("/v1/organization/admin_api_keys/{}", app.admin_key_id);
    let mut request = app.request_as(key, Method::GET, &path);
    if let Some(hops) = forwarded_for {
        request = request.header("X-Forwarded-For", hops);
    }
    request.send().await.expect("request sent")
}

/// Asserts a 401 `invalid_api_key`.
async fn assert_refused(response: reqwest::Response, context: &str) {
    let error = assert_error(response, StatusCode::UNAUTHORIZED, context).await;
    assert_eq!(error["code"], "invalid_api_key", "{context}");
}

/// Asserts a 429 in the envelope, typed as upstream types it; returns its `Retry-After`.
async fn assert_rate_limited(response: reqwest::Response, context: &str) -> u64 {
    let retry_after = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{context}: no Retry-After"))
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap_or_else(|e| panic!("{context}: Retry-After is not whole seconds: {e}"));
    assert!(retry_after >= 1, "{context}: Retry-After {retry_after}");
    let error = assert_error(response, StatusCode::TOO_MANY_REQUESTS, context).await;
    assert_eq!(error["type"], "requests", "{context}");
    assert_eq!(error["code"], "rate_limit_exceeded", "{context}");
    retry_after
}

/// Presents new invented keys as `forwarded_for` until one gets 429 (asserting that the ones
/// before it got 401); returns how many were looked up and the 429's `Retry-After`.
async fn spend_budget(app: &TestApp, forwarded_for: Option<&str>) -> (usize, u64) {
    for looked_up in 0..=BURST {
        let response = present(app, &invented(), forwarded_for).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return (looked_up, assert_rate_limited(response, "spent").await);
        }
        assert_refused(response, "within the budget").await;
    }
    panic!("{forwarded_for:?} was never limited");
}

async fn unknown_keys_beyond_the_budget_get_429_with_retry_after_and_make_no_query(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    for n in 0..BURST {
        let before = app.queries();
        assert_refused(present(&app, &invented(), None).await, "within the budget").await;
        assert!(
            app.queries() > before,
            "lookup {n} did not reach the database"
        );
    }

    let before = app.queries();
    for n in 0..10 {
        let retry_after =
            assert_rate_limited(present(&app, &invented(), None).await, "beyond").await;
        assert_eq!(retry_after, 2, "attempt {n}: the next lookup is due in 2 s");
    }
    assert_eq!(app.queries(), before, "a limited key was looked up");
}

async fn keys_the_service_knows_keep_working_from_an_address_over_its_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    let admin_key = app.admin_key.clone();
    assert_eq!(
        present(&app, &admin_key, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(spend_budget(&app, None).await.0, BURST);

    for _ in 0..10 {
        assert_eq!(
            present(&app, &admin_key, None).await.status(),
            StatusCode::OK,
            "a cached key was limited"
        );
        assert_rate_limited(present(&app, &invented(), None).await, "interleaved").await;
    }
}

async fn a_hash_in_the_negative_cache_keeps_getting_401_after_the_budget_is_spent(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    // A revoked or mistaken key that some client keeps retrying.
    let retried = invented();
    assert_refused(present(&app, &retried, None).await, "first try").await;
    let (looked_up, _) = spend_budget(&app, None).await;
    assert_eq!(looked_up, BURST - 1, "the first try was charged");

    let before = app.queries();
    for n in 0..10 {
        assert_refused(present(&app, &retried, None).await, &format!("retry {n}")).await;
    }
    assert_eq!(app.queries(), before, "the negative cache was not used");
}

async fn malformed_keys_get_401_not_429_from_an_address_over_its_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    spend_budget(&app, None).await;
    let valid = invented();
    let mut wrong_checksum = valid.clone();
    let last = if wrong_checksum.ends_with('0') {
        "1"
    } else {
        "0"
    };
    wrong_checksum.replace_range(valid.len() - 1.., last);
    let cases = [
        (wrong_checksum, "a checksum that does not match"),
        ("sk-admin-short".to_owned(), "too short"),
        (
            valid.replacen("sk-admin-", "sk-proj--", 1),
            "another prefix",
        ),
    ];
    let before = app.queries();
    for (token, why) in cases {
        assert_refused(present(&app, &token, None).await, why).await;
    }
    let missing = app.client.get(app.url("/v1/organization/admin_api_keys"));
    let error = assert_error(
        missing.send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "no key",
    )
    .await;
    assert_eq!(error["code"], "missing_api_key");
    assert_eq!(app.queries(), before);
}

async fn the_budget_refills_when_retry_after_says(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    let (_, retry_after) = spend_budget(&app, None).await;
    assert_eq!(retry_after, 2);

    app.clock.advance(1);
    let retry_after = assert_rate_limited(present(&app, &invented(), None).await, "1 s on").await;
    assert_eq!(retry_after, 1, "counts down");

    app.clock.advance(1);
    let before = app.queries();
    assert_refused(present(&app, &invented(), None).await, "refilled").await;
    assert!(app.queries() > before, "no lookup after the refill");
    let retry_after =
        assert_rate_limited(present(&app, &invented(), None).await, "one unit only").await;
    assert_eq!(retry_after, 2);

    // A long pause gives the whole burst back.
    app.clock.advance(3600);
    assert_eq!(spend_budget(&app, None).await.0, BURST);
}

async fn without_trusted_proxies_x_forwarded_for_is_ignored(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    spend_budget(&app, Some("203.0.113.1")).await;
    for hops in [Some("203.0.113.2"), Some("198.51.100.7, 203.0.113.3"), None] {
        assert_rate_limited(present(&app, &invented(), hops).await, &format!("{hops:?}")).await;
    }
}

async fn each_client_behind_a_trusted_proxy_has_its_own_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    assert_eq!(spend_budget(&app, Some("203.0.113.1")).await.0, BURST);

    // The proxy appends the address it saw; what the client sent on the left is not believed.
    assert_rate_limited(
        present(&app, &invented(), Some("198.51.100.7, 203.0.113.1")).await,
        "a spoofed hop on the left",
    )
    .await;
    assert_eq!(
        spend_budget(&app, Some("203.0.113.2")).await.0,
        BURST,
        "another client"
    );
    assert_eq!(
        spend_budget(&app, Some("203.0.113.1, 127.0.0.1")).await.0,
        0,
        "the same client through a second trusted hop"
    );
    // A malformed hop where the client should be is the one shared unknown client: garbage
    // buys no fresh budget, whatever it says.
    assert_eq!(
        spend_budget(&app, Some("203.0.113.9, not-an-address"))
            .await
            .0,
        BURST,
        "the unknown client"
    );
    for hops in [
        "unknown",
        "203.0.113.9:4711",
        "203.0.113.9,,",
        "garbage, 127.0.0.1",
    ] {
        assert_rate_limited(present(&app, &invented(), Some(hops)).await, hops).await;
    }
    // ... and never spends the proxy's own budget: its requests (no header) are its own.
    assert_eq!(spend_budget(&app, None).await.0, BURST, "the proxy");
}

async fn ipv6_clients_share_the_budget_of_their_slash_64(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    assert_eq!(spend_budget(&app, Some("2001:db8:1:2::1")).await.0, BURST);
    assert_rate_limited(
        present(&app, &invented(), Some("2001:db8:1:2:ffff::9")).await,
        "the same /64",
    )
    .await;
    assert_eq!(
        spend_budget(&app, Some("2001:db8:1:3::1")).await.0,
        BURST,
        "the next /64"
    );
}

async fn a_zero_rate_never_limits(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    for n in 0..4 * BURST {
        assert_refused(
            present(&app, &invented(), None).await,
            &format!("lookup {n}"),
        )
        .await;
    }
}

/// Accepting an invite with `token` (no admin key: the token is the credential).
async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/organization/invites/accept"))
        .json(&serde_json::json!({ "token": token, "name": "Someone" }))
        .send()
        .await
        .unwrap()
}

async fn unknown_invite_tokens_spend_the_same_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    let invented_invite = || {
        admin_api_keys::domain::secret::generate_invite_token()
            .expose()
            .to_owned()
    };
    // A pending invite's token costs nothing: in between, the budget stays as it was.
    for n in 0..BURST - 1 {
        let error = assert_error(
            accept(&app, &invented_invite()).await,
            StatusCode::BAD_REQUEST,
            "within the budget",
        )
        .await;
        assert_eq!(error["code"], "invalid_invite_token", "lookup {n}");
    }
    let invite = app
        .post_json(
            "/v1/organization/invites",
            &serde_json::json!({ "email": "new@example.com", "role": "reader" }),
        )
        .await;
    let (status, invite) = crate::helpers::read(invite).await;
    assert_eq!(status, StatusCode::OK, "{invite}");
    let joined = accept(&app, invite["accept_token"].as_str().unwrap()).await;
    assert_eq!(joined.status(), StatusCode::OK);
    for n in 0..1 {
        let error = assert_error(
            accept(&app, &invented_invite()).await,
            StatusCode::BAD_REQUEST,
            "within the budget",
        )
        .await;
        assert_eq!(error["code"], "invalid_invite_token", "lookup {n}");
    }
    let before = app.queries();
    assert_rate_limited(accept(&app, &invented_invite()).await, "invites beyond").await;
    assert_rate_limited(present(&app, &invented(), None).await, "and keys too").await;
    assert_eq!(app.queries(), before, "no lookup once limited");
    // A malformed token is refused before any lookup, limited or not.
    let error = assert_error(
        accept(&app, "sk-invite-short").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    assert_eq!(error["code"], "invalid_invite_token");
}

async fn concurrent_lookups_of_unknown_keys_never_exceed_the_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    let before = app.queries();
    let requests = (0..48).map(|_| {
        let app = &app;
        async move { present(app, &invented(), None).await.status() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let looked_up = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(looked_up + limited, statuses.len(), "{statuses:?}");
    assert_eq!(looked_up, BURST, "48 at once made {looked_up} lookups");
    assert!(
        app.queries() - before <= BURST as u64,
        "{} statements for {BURST} lookups",
        app.queries() - before
    );
}

async fn a_lookup_that_finds_a_key_costs_no_budget(app: TestApp) {
    app.state.cache.doubt_key_set(true);
    let admin_key = app.admin_key.clone();
    for n in 0..2 * BURST {
        // Each time dropped from the cache: every request is a lookup, and finds the key.
        app.state.cache.reset();
        assert_eq!(
            present(&app, &admin_key, None).await.status(),
            StatusCode::OK,
            "lookup {n}"
        );
    }
    assert_eq!(
        spend_budget(&app, None).await.0,
        BURST,
        "the whole budget is left"
    );
}

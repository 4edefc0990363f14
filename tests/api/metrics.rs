//! `GET /metrics`: Prometheus' text format, every family present, counters that move with
//! what the server does, and `METRICS_BIND_ADDR` moving it to a listener of its own.
//!
//! The recorder is one per process and the tests run in parallel, so each test compares two
//! scrapes of its own and asserts that a counter moved by at least what it did.

use std::collections::BTreeMap;
use std::sync::Arc;

use admin_api_keys::clock::ManualClock;
use admin_api_keys::config::Settings;
use admin_api_keys::domain::secret::generate_key;
use admin_api_keys::startup::Application;
use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, START, TestApp, TestDatabase, assert_error};

const KEYS: &str = "/v1/organization/admin_api_keys";

/// The samples of one scrape, by name and label set.
struct Scrape(BTreeMap<(String, Vec<(String, String)>), f64>, String);

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').unwrap())),
                None => (series, Vec::new()),
            };
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            samples.insert((name.to_owned(), labels), value);
        }
        Self(samples, text.to_owned())
    }

    /// The value of `name` with exactly `labels` (0 when the series is not there yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        wanted.sort();
        self.0
            .get(&(name.to_owned(), wanted))
            .copied()
            .unwrap_or(0.0)
    }

    fn has_family(&self, name: &str, kind: &str) -> bool {
        self.1.contains(&format!("# TYPE {name} {kind}\n"))
    }
}

/// `a="x",b="y"` as sorted pairs (values here hold no quotes or escapes).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let (value, after) = after.split_once('"').expect("a closing quote");
        pairs.push((name.trim_start_matches(',').to_owned(), value.to_owned()));
        rest = after;
    }
    pairs.sort();
    pairs
}

/// Scrapes `base`'s `/metrics` with no key, asserting the format.
async fn scrape(client: &reqwest::Client, base: &str) -> Scrape {
    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scraped");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&response.text().await.unwrap())
}

/// A family, its labels, and how much it must have grown at least.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// How much `name{labels}` grew from `before` to `after`.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.value(name, labels)
}

const FAMILIES: &[(&str, &str)] = &[
    ("admin_api_keys_http_requests_total", "counter"),
    ("admin_api_keys_http_request_duration_seconds", "histogram"),
    ("admin_api_keys_auth_outcomes_total", "counter"),
    ("admin_api_keys_cache_hits_total", "counter"),
    ("admin_api_keys_cache_misses_total", "counter"),
    ("admin_api_keys_cache_evictions_total", "counter"),
    ("admin_api_keys_cache_entries", "gauge"),
    ("admin_api_keys_invalidations_received_total", "counter"),
    ("admin_api_keys_invalidation_listener_state", "gauge"),
    (
        "admin_api_keys_invalidation_listener_losses_total",
        "counter",
    ),
    (
        "admin_api_keys_invalidation_listener_reconnects_total",
        "counter",
    ),
    ("admin_api_keys_db_pool_connections", "gauge"),
    ("admin_api_keys_db_pool_max_connections", "gauge"),
    ("admin_api_keys_db_pool_wait_seconds", "histogram"),
    ("admin_api_keys_db_errors_total", "counter"),
    ("admin_api_keys_usage_pending_keys", "gauge"),
    ("admin_api_keys_usage_flush_duration_seconds", "histogram"),
    ("admin_api_keys_usage_flushes_total", "counter"),
    ("admin_api_keys_usage_flushed_keys_total", "counter"),
    ("admin_api_keys_lookup_limit_decisions_total", "counter"),
    ("admin_api_keys_build_info", "gauge"),
];

async fn every_family_is_scraped_without_a_key_and_counters_move_with_requests(app: TestApp) {
    let before = scrape(&app.client, &app.address).await;
    let unknown = generate_key();
    let key_path = format!("{KEYS}/{}", app.admin_key_id);

    // Refused keys: none, malformed, unknown.
    let missing = app.client.get(app.url(KEYS)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let malformed = app.request_as("sk-admin-nope", Method::GET, KEYS);
    assert_eq!(malformed.send().await.unwrap().status(), 401);
    let invented = app.request_as(unknown.expose(), Method::GET, KEYS);
    assert_eq!(invented.send().await.unwrap().status(), 401);
    // A retrieve twice: the second comes from the view cache, the key from the auth cache.
    for _ in 0..2 {
        assert_eq!(app.get(&key_path).await.status(), StatusCode::OK);
    }
    // Forward auth with the key and with an unknown one; introspection of a malformed token.
    let forward = app.request(Method::GET, "/v1/forward-auth").send().await;
    assert_eq!(forward.unwrap().status(), StatusCode::OK);
    let forward = app.request_as(unknown.expose(), Method::GET, "/v1/forward-auth");
    assert_eq!(forward.send().await.unwrap().status(), 401);
    let introspected = app
        .request(Method::POST, "/v1/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(introspected.status(), StatusCode::OK);
    // A path no route has.
    let nowhere = app.get("/v1/no/such/route").await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    app.flush_usage().await;

    let after = scrape(&app.client, &app.address).await;
    for (name, kind) in FAMILIES {
        assert!(after.has_family(name, kind), "{name} ({kind}) is scraped");
    }
    let auth = "admin_api_keys_auth_outcomes_total";
    let cases: &[Expected] = &[
        (auth, &[("via", "api"), ("outcome", "missing")], 1.0),
        (auth, &[("via", "api"), ("outcome", "malformed")], 1.0),
        (auth, &[("via", "api"), ("outcome", "unknown")], 1.0),
        (auth, &[("via", "api"), ("outcome", "ok")], 3.0),
        (auth, &[("via", "forward_auth"), ("outcome", "ok")], 1.0),
        (
            auth,
            &[("via", "forward_auth"), ("outcome", "unknown")],
            1.0,
        ),
        (
            auth,
            &[("via", "introspection"), ("outcome", "malformed")],
            1.0,
        ),
        (
            "admin_api_keys_cache_hits_total",
            &[("cache", "views")],
            1.0,
        ),
        ("admin_api_keys_cache_hits_total", &[("cache", "auth")], 1.0),
        (
            "admin_api_keys_http_requests_total",
            &[
                ("route", "/organization/admin_api_keys/{key_id}"),
                ("method", "GET"),
                ("status", "200"),
            ],
            2.0,
        ),
        (
            "admin_api_keys_http_requests_total",
            &[
                ("route", "/organization/admin_api_keys"),
                ("method", "GET"),
                ("status", "401"),
            ],
            3.0,
        ),
        (
            "admin_api_keys_http_requests_total",
            &[
                ("route", "/forward-auth"),
                ("method", "GET"),
                ("status", "200"),
            ],
            1.0,
        ),
        (
            "admin_api_keys_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")],
            1.0,
        ),
        (
            "admin_api_keys_http_request_duration_seconds_count",
            &[
                ("route", "/organization/admin_api_keys/{key_id}"),
                ("method", "GET"),
            ],
            2.0,
        ),
        (
            "admin_api_keys_usage_flushes_total",
            &[("result", "ok")],
            1.0,
        ),
        (
            "admin_api_keys_usage_flush_duration_seconds_count",
            &[],
            1.0,
        ),
    ];
    for (name, labels, at_least) in cases {
        let moved = grew(&before, &after, name, labels);
        assert!(
            moved >= *at_least,
            "{name}{labels:?} grew by {moved}, expected at least {at_least}"
        );
    }
    if app.database_url.starts_with("postgres") {
        // A key made here comes back from the database as a notification.
        let invalidations = "admin_api_keys_invalidations_received_total";
        let created = [("kind", "key_created")];
        app.create_named("announced").await;
        let mut heard = 0.0;
        for _ in 0..40 {
            let now = scrape(&app.client, &app.address).await;
            heard = grew(&after, &now, invalidations, &created);
            if heard >= 1.0 {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(heard >= 1.0, "the listener's notification is counted");
    }
    assert!(
        !after.1.contains(&app.admin_key_id) && !after.1.contains(&app.owner_id),
        "no key or owner id is a label"
    );
    assert!(
        !after.1.contains("/no/such/route"),
        "a path no route has is not a label"
    );
}

backend_tests!(every_family_is_scraped_without_a_key_and_counters_move_with_requests);

#[actix_web::test]
async fn metrics_bind_addr_moves_the_scrape_to_its_own_listener() {
    let database = TestDatabase::create(Backend::Sqlite).expect("SQLite is always available");
    let settings = Settings {
        database_url: database.url(),
        bind_addr: "127.0.0.1:0".to_owned(),
        metrics_bind_addr: Some("127.0.0.1:0".to_owned()),
        ..Default::default()
    };
    let app = Application::build(settings, Arc::new(ManualClock::new(START)))
        .await
        .expect("the server builds");
    let main = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("a metrics listener")
    );
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let on_main = client.get(format!("{main}/metrics")).send().await.unwrap();
    assert_error(
        on_main,
        StatusCode::NOT_FOUND,
        "/metrics on the main listener",
    )
    .await;
    let scraped = scrape(&client, &metrics).await;
    for (name, kind) in FAMILIES {
        assert!(scraped.has_family(name, kind), "{name} ({kind}) is scraped");
    }
    let healthz = client.get(format!("{main}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK, "the API listener serves");
    let elsewhere = client
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    assert_error(
        elsewhere,
        StatusCode::NOT_FOUND,
        "only /metrics on its listener",
    )
    .await;
    let posted = client
        .post(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
}

#[test]
fn metrics_are_not_part_of_the_openapi_document() {
    let document = admin_api_keys::openapi::document();
    assert!(!document.contains("\"/metrics\""));
}

#[test]
fn the_grafana_dashboard_charts_only_families_the_service_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/admin-api-keys.json"
    );
    let dashboard = std::fs::read_to_string(path).expect("the dashboard is in deploy/grafana");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() > 10));
    let mut charted = 0;
    for (at, _) in dashboard.match_indices("admin_api_keys_") {
        let name: String = dashboard[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            FAMILIES.iter().any(|(known, _)| *known == family),
            "the dashboard charts {name}, which is not exported"
        );
        charted += 1;
    }
    assert!(charted >= FAMILIES.len(), "{charted} series charted");
}

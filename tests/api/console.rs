//! The admin console (`/console`): what the page and its files are served with, what is not
//! served, and, in headless Chromium on each backend, a person's whole round through it
//! (`tests/browser/console.mjs`).
//!
//! `UPDATE_SCREENSHOTS=1` makes the SQLite run save the key list and the create-with-reveal
//! screen into `docs/screenshots/`, which the README shows; otherwise they go to a temporary
//! directory, so a test run leaves the repository as it was.

use admin_api_keys::routes::console::{ASSETS, CONTENT_SECURITY_POLICY, bundle_size};
use reqwest::StatusCode;

use crate::browser::BrowserSetup;
use crate::helpers::{TestApp, assert_error};

backend_tests!(
    the_console_and_its_files_are_served_with_a_strict_policy,
    a_browser_holding_the_files_revalidates_them_without_a_download,
    what_the_console_does_not_serve_is_answered_in_the_error_envelope,
    the_console_is_not_part_of_the_api_document,
    a_person_runs_keys_members_and_the_audit_log_from_the_console_in_headless_chromium,
);

fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The headers every console answer carries.
fn assert_console_headers(response: &reqwest::Response, path: &str) {
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    ] {
        assert_eq!(header(response, name), Some(value), "{path}: {name}");
    }
    assert!(header(response, "etag").is_some(), "{path}: etag");
}

async fn the_console_and_its_files_are_served_with_a_strict_policy(app: TestApp) {
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
    }
    assert!(
        !CONTENT_SECURITY_POLICY.contains("unsafe") && !CONTENT_SECURITY_POLICY.contains("http")
    );

    let response = app.client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_console_headers(&response, "/console");
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style=") && !html.contains("<style"),
        "no inline script or style in the page"
    );
    assert!(html.contains(r#"<script type="module" src="console/app.js">"#));

    let mut total = html.len();
    for (name, content_type, _) in ASSETS {
        let path = format!("/console/{name}");
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert_console_headers(&response, &path);
        let text = response.text().await.unwrap();
        total += text.len();
        for (pattern, why) in [
            ("http://", "loads nothing from another host"),
            ("https://", "loads nothing from another host"),
            ("localStorage", "keeps the key in sessionStorage only"),
            ("innerHTML", "builds the page from text, never from markup"),
            ("eval(", "runs no code made from strings"),
            ("style=", "no inline style"),
        ] {
            assert!(
                !text.contains(pattern),
                "{path} contains {pattern:?}: it {why}"
            );
        }
    }
    assert_eq!(
        total,
        bundle_size(),
        "the page and its files are the bundle"
    );
    eprintln!(
        "console bundle: {total} bytes in {} files",
        ASSETS.len() + 1
    );

    let head = app
        .client
        .head(app.url("/console/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_console_headers(&head, "HEAD /console/app.js");
    assert!(head.bytes().await.unwrap().is_empty());
}

async fn a_browser_holding_the_files_revalidates_them_without_a_download(app: TestApp) {
    for path in ["/console", "/console/app.js"] {
        let first = app.client.get(app.url(path)).send().await.unwrap();
        let etag = header(&first, "etag").unwrap().to_owned();
        let again = app
            .client
            .get(app.url(path))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_console_headers(&again, path);
        assert!(again.bytes().await.unwrap().is_empty(), "{path}");
        let other = app
            .client
            .get(app.url(path))
            .header("If-None-Match", "\"0000000000000000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK, "{path}: another version");
    }
    let page = app.client.get(app.url("/console")).send().await.unwrap();
    let script = app.client.get(app.url("/console/app.js")).send().await;
    assert_ne!(
        header(&page, "etag"),
        header(&script.unwrap(), "etag"),
        "each file has its own tag"
    );
}

async fn what_the_console_does_not_serve_is_answered_in_the_error_envelope(app: TestApp) {
    for path in [
        "/console/nothing.js",
        "/console/index.html",
        "/console/app.js.map",
        "/console/%2e%2e%2fCargo.toml",
        "/console/..%2fdocs.rs",
        "/console/keys/key_1",
        "/v1/console",
        "/v1/console/app.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            header(&response, "content-type"),
            Some("application/json"),
            "{path}"
        );
        let error = assert_error(response, StatusCode::NOT_FOUND, path).await;
        assert_eq!(error["code"], "not_found", "{path}");
    }
    for path in ["/console", "/console/app.js", "/console/"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"), "{path}");
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, path).await;
    }
    // `/console/` would break the page's relative links: it is sent to `/console`.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(app.url("/console/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&response, "location"), Some("../console"));
}

async fn the_console_is_not_part_of_the_api_document(app: TestApp) {
    let spec = app.client.get(app.url("/openapi.json")).send().await;
    let spec = spec.unwrap().text().await.unwrap();
    assert!(
        !spec.contains("/console"),
        "the console is a page, not an operation"
    );
}

async fn a_person_runs_keys_members_and_the_audit_log_from_the_console_in_headless_chromium(
    app: TestApp,
) {
    let Some(setup) = BrowserSetup::find("/console") else {
        return;
    };
    // The committed screenshots come from SQLite, and only when asked for.
    let keep = std::env::var_os("UPDATE_SCREENSHOTS").is_some()
        && !app.database_url.starts_with("postgres");
    let scratch = tempfile::tempdir().unwrap();
    let screenshots = if keep {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    } else {
        scratch.path().to_owned()
    };
    let (base, key) = (app.address.clone(), app.admin_key.clone());
    let dir = screenshots.to_string_lossy().into_owned();
    let (status, output) = actix_web::rt::task::spawn_blocking(move || {
        setup.run(
            "console.mjs",
            &base,
            &[("CONSOLE_ADMIN_KEY", &key), ("SCREENSHOTS", &dir)],
        )
    })
    .await
    .unwrap();
    eprintln!("{output}");
    assert!(status, "the console check failed:\n{output}");
    assert!(
        output.contains("every step is in the audit log"),
        "{output}"
    );
    assert!(output.contains("first load"), "{output}");
    for shot in ["console-keys.png", "console-create-reveal.png"] {
        let bytes = std::fs::read(screenshots.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{shot} is a PNG");
    }
}

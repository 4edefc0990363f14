//! The API reference in the browser: `/docs` (Swagger UI, embedded in the binary), `/` sending
//! a browser there, `/v1/openapi.json`, and the probes in the document.
//!
//! The page tests run everywhere. The browser test drives Debian's headless Chromium through
//! `tests/browser/docs.mjs` (playwright-core); without Chromium, Node or `npm ci` in
//! `tests/browser` it passes with a note on stderr, except under `CI`, where they must be there
//! (`.ci/run` installs them).

use admin_api_keys::routes::docs::CONTENT_SECURITY_POLICY;
use reqwest::{Method, StatusCode};

use crate::browser::BrowserSetup;
use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    the_docs_page_and_its_assets_load_nothing_from_another_host,
    the_root_sends_a_browser_to_the_docs,
    the_openapi_document_also_answers_under_v1,
    what_the_docs_do_not_serve_is_answered_in_the_error_envelope,
    the_probes_are_in_the_document_and_answer_at_the_root,
);

/// The page's assets: Swagger UI's and ours, as the page links them.
const ASSETS: [(&str, &str); 6] = [
    ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
    ("/docs/page.css", "text/css; charset=utf-8"),
    ("/docs/favicon-32x32.png", "image/png"),
    ("/docs/favicon-16x16.png", "image/png"),
    (
        "/docs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
    ),
    ("/docs/init.js", "text/javascript; charset=utf-8"),
];

/// Where a page would load a file from another host; none may appear in what `/docs` serves.
const REMOTE_LOADS: [&str; 8] = [
    "url(http",
    "url(\"http",
    "url('http",
    "@import",
    "unpkg.com",
    "jsdelivr",
    "cdnjs",
    "fonts.googleapis",
];

fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn the_docs_page_and_its_assets_load_nothing_from_another_host(app: TestApp) {
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        header(&response, "content-security-policy"),
        Some(CONTENT_SECURITY_POLICY)
    );
    assert!(
        !CONTENT_SECURITY_POLICY.contains("http") && !CONTENT_SECURITY_POLICY.contains('*'),
        "the policy names no other origin"
    );
    assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the page names no other host: {html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    // Every file the page links is one of ours, relative to it.
    let linked: Vec<&str> = html
        .split(['"'])
        .filter(|part| part.starts_with("docs/"))
        .collect();
    assert_eq!(linked.len(), ASSETS.len(), "{linked:?}");
    for (path, content_type) in ASSETS {
        assert!(linked.contains(&&path[1..]), "the page links {path}");
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(
            header(&response, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 100, "{path} has content");
        if !path.ends_with(".png") {
            let text = String::from_utf8_lossy(&body).to_lowercase();
            for pattern in REMOTE_LOADS {
                assert!(!text.contains(pattern), "{path} contains {pattern:?}");
            }
        }
    }
    let init = app.client.get(app.url("/docs/init.js")).send().await;
    let init = init.unwrap().text().await.unwrap();
    assert!(
        !init.contains("http://") && !init.contains("https://"),
        "Swagger UI is started on this service's document only"
    );
    assert!(init.contains("validatorUrl: null"), "no validator badge");
    // A HEAD gets the headers without the body.
    let head = app.client.head(app.url("/docs")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());
}

async fn the_root_sends_a_browser_to_the_docs(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for method in [Method::GET, Method::HEAD] {
        let response = client
            .request(method.clone(), app.url("/"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::TEMPORARY_REDIRECT,
            "{method}"
        );
        assert_eq!(header(&response, "location"), Some("docs"), "{method}");
    }
    // A client that follows it lands on the page (the location is relative to `/`).
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.url().path(), "/docs");
    assert!(response.text().await.unwrap().contains("swagger-ui"));
    // `/docs/` would break the page's relative links: it is sent to `/docs`.
    let response = client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&response, "location"), Some("../docs"));
}

async fn the_openapi_document_also_answers_under_v1(app: TestApp) {
    let root = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let v1 = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), StatusCode::OK);
    assert_eq!(header(&v1, "content-type"), Some("application/json"));
    assert_eq!(v1.text().await.unwrap(), root.text().await.unwrap());
    let response = app
        .client
        .post(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "POST /v1/openapi.json",
    )
    .await;
}

async fn what_the_docs_do_not_serve_is_answered_in_the_error_envelope(app: TestApp) {
    for path in [
        // Swagger UI files the page does not use, though they are in the release.
        "/docs/swagger-ui-bundle.js.map",
        "/docs/index.html",
        "/docs/swagger-initializer.js",
        "/docs/oauth2-redirect.html",
        "/docs/%2e%2e%2fCargo.toml",
        "/docs/nothing/here",
        // The page is not part of the versioned API.
        "/v1/docs",
        "/v1/",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let error = assert_error(response, StatusCode::NOT_FOUND, path).await;
        assert_eq!(error["code"], "not_found", "{path}");
    }
    for path in ["/", "/docs", "/docs/init.js"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"), "{path}");
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, path).await;
    }
}

async fn the_probes_are_in_the_document_and_answer_at_the_root(app: TestApp) {
    let (status, spec) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (path, id, body) in [
        ("/healthz", "healthz", "ok"),
        ("/readyz", "readyz", "ready"),
    ] {
        let item = &spec["paths"][path];
        assert_eq!(item["get"]["operationId"], id);
        assert!(item["get"].get("security").is_none(), "{id} needs no key");
        // They are outside `/v1`, so their path item overrides the document's server.
        assert_eq!(item["servers"], serde_json::json!([{ "url": "/" }]), "{id}");
        let (status, json) = read(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(json["status"], body, "{path}");
    }
    assert!(
        spec["paths"]["/readyz"]["get"]["responses"]["503"].is_object(),
        "readiness documents its 503"
    );
}

/// Once, on SQLite: the page is the same on both backends, and a browser is slow to start.
#[actix_web::test]
async fn the_docs_page_renders_every_operation_in_headless_chromium_without_leaving_the_machine() {
    let Some(setup) = BrowserSetup::find("/docs") else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (base, key) = (app.address.clone(), app.admin_key.clone());
    let (status, output) = actix_web::rt::task::spawn_blocking(move || {
        setup.run("docs.mjs", &base, &[("DOCS_ADMIN_KEY", &key)])
    })
    .await
    .unwrap();
    eprintln!("{output}");
    assert!(status, "the browser check failed:\n{output}");
    assert!(output.contains("operations rendered"), "{output}");
    assert!(output.contains("Try it out: 200"), "{output}");
}

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, read};

backend_tests!(
    unknown_routes_get_404_in_the_envelope,
    wrong_methods_get_405_in_the_envelope,
    every_405_lists_in_allow_exactly_the_methods_the_resource_takes,
    heads_the_http_parser_refuses_get_the_envelope_and_a_request_id,
    malformed_and_mistyped_bodies_get_4xx_in_the_envelope,
    health_and_readiness_answer_json_without_auth,
    health_and_readiness_answer_head_like_get_without_a_body,
);

const PATH: &str = "/v1/organization/admin_api_keys";

async fn unknown_routes_get_404_in_the_envelope(app: TestApp) {
    // (`/` is not among them: it sends a browser to /docs; see tests/api/docs.rs.)
    for path in [
        "/v1",
        "/v2/organization/admin_api_keys",
        "/v1/organization/admin_api_keys/key_x/extra",
        "/v1/organization",
    ] {
        let response = app.get(path).await;
        let error = assert_error(response, StatusCode::NOT_FOUND, path).await;
        assert_eq!(error["code"], "not_found", "{path}");
    }
}

async fn wrong_methods_get_405_in_the_envelope(app: TestApp) {
    let cases = [
        (Method::PUT, PATH.to_owned()),
        (Method::DELETE, PATH.to_owned()),
        (Method::PATCH, format!("{PATH}/{}", app.admin_key_id)),
        (Method::PUT, "/organization/admin_api_keys".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::DELETE, "/readyz".to_owned()),
        (Method::PUT, "/openapi.json".to_owned()),
    ];
    for (method, path) in cases {
        let response = app.request(method.clone(), &path).send().await.unwrap();
        let error = assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path}"),
        )
        .await;
        assert_eq!(error["code"], "method_not_allowed");
    }
}

async fn every_405_lists_in_allow_exactly_the_methods_the_resource_takes(app: TestApp) {
    // Sending each allowed method must not touch the key the requests are made with.
    let throwaway = app.create_named("throwaway").await;
    let key = format!("{PATH}/{}", throwaway["id"].as_str().unwrap());
    let cases = [
        (PATH.to_owned(), "GET, POST"),
        (key.clone(), "GET, POST, DELETE"),
        (format!("{key}/rotate"), "POST"),
        ("/organization/admin_api_keys".to_owned(), "GET, POST"),
        ("/v1/organization/users".to_owned(), "GET"),
        (
            format!("/v1/organization/users/{}", app.owner_id),
            "GET, POST, DELETE",
        ),
        ("/v1/organization/invites".to_owned(), "GET, POST"),
        (
            "/v1/organization/invites/invite-x".to_owned(),
            "GET, DELETE",
        ),
        ("/v1/organization/invites/accept".to_owned(), "POST"),
        ("/v1/organization/audit_logs".to_owned(), "GET"),
        ("/v1/introspect".to_owned(), "POST"),
        ("/healthz".to_owned(), "GET, HEAD"),
        ("/readyz".to_owned(), "GET, HEAD"),
        ("/openapi.json".to_owned(), "GET"),
    ];
    for (path, allow) in cases {
        // Arrange: one method the resource does not take.
        let send = |method: Method| app.request(method, &path).send();

        // Act
        let response = send(Method::PATCH).await.unwrap();

        // Assert: 405 naming what it takes, and each of those is not a 405.
        let allowed = response.headers().get("allow").cloned();
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, &path).await;
        assert_eq!(
            allowed.as_ref().and_then(|v| v.to_str().ok()),
            Some(allow),
            "PATCH {path}"
        );
        for method in allow.split(", ") {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let status = send(method.clone()).await.unwrap().status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
}

/// Sends `head` on a new connection and reads the whole answer (the server closes it).
async fn raw_answer(app: &TestApp, head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes")
    .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn heads_the_http_parser_refuses_get_the_envelope_and_a_request_id(app: TestApp) {
    // (A head over actix-http's size limit gets the same treatment as a 431; it is not sent
    // here, because the server closes the connection with the rest of it unread, and the
    // reset that follows can take the answer with it before the test reads it.)
    let cases: [(&[u8], &str, &str); 4] = [
        (
            b"GET /x HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
            "400 Bad Request",
            "malformed_request",
        ),
        (
            b"GET /x HTTP/9.9\r\nHost: x\r\n\r\n",
            "400 Bad Request",
            "malformed_request",
        ),
        (
            b"GET /x\x01 HTTP/1.1\r\n\r\n",
            "400 Bad Request",
            "malformed_request",
        ),
        (
            b"GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            "400 Bad Request",
            "malformed_request",
        ),
    ];
    for (head, status, code) in cases {
        let shown = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();

        let answer = raw_answer(&app, head).await;

        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{shown:?}: {answer}"
        );
        let id = head
            .lines()
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("{shown:?}: no X-Request-Id in {head}"));
        assert!(id.starts_with("req_") && id.len() == 28, "{shown:?}: {id}");
        assert!(
            head.contains("content-type: application/json"),
            "{shown:?}: {head}"
        );
        let error: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{shown:?}");
        assert_eq!(error["error"]["code"], code, "{shown:?}");
    }
    // A well-formed request on a kept-alive connection after a good one is unaffected.
    let good = app.get(PATH).await;
    assert_eq!(good.status(), StatusCode::OK);
    assert!(good.headers().contains_key("x-request-id"));
}

async fn malformed_and_mistyped_bodies_get_4xx_in_the_envelope(app: TestApp) {
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = app.request(Method::POST, PATH).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send()
    };
    let big_name = "n".repeat(70 * 1024);
    let cases: Vec<(Option<&'static str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            Some("application/json"),
            b"{\"name\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "truncated JSON",
        ),
        (
            Some("application/json"),
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            Some("application/json"),
            vec![0xff, 0xfe, 0x00],
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (
            Some("application/json"),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty body",
        ),
        (
            Some("application/json"),
            serde_json::to_vec(&json!({ "name": big_name })).unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "70 KiB body",
        ),
    ];
    for (content_type, body, status, why) in cases {
        let response = send(content_type, body).await.unwrap();
        assert_error(response, status, why).await;
    }
    assert_eq!(
        app.list("limit=100").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn health_and_readiness_answer_json_without_auth(app: TestApp) {
    let (status, health) = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, health),
        (StatusCode::OK, json!({ "status": "ok" }))
    );

    let (status, ready) = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, ready),
        (StatusCode::OK, json!({ "status": "ready" }))
    );
}

async fn health_and_readiness_answer_head_like_get_without_a_body(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let get_type = get.headers().get("content-type").cloned();
        let get_body = get.bytes().await.unwrap();

        let head = app.client.head(app.url(path)).send().await.unwrap();

        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "HEAD {path}: the same Content-Type as GET"
        );
        assert_eq!(
            head.headers()
                .get("content-length")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some(get_body.len().to_string()),
            "HEAD {path}: the Content-Length of GET's body"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: no body"
        );
    }
}

/// Readiness watches the writer: stuck for longer than `writer_stall` is a 503, busy is not.
mod writer_readiness {
    use std::time::{Duration, Instant};

    use admin_api_keys::config::Settings;
    use admin_api_keys::db::WriteKind;
    use reqwest::StatusCode;

    use crate::helpers::{TestApp, assert_error, read};

    backend_tests!(
        settings = short_stall;
        readiness_fails_while_the_writer_is_stuck_and_recovers_when_it_moves,
        a_busy_writer_that_keeps_finishing_writes_stays_ready,
    );

    const STALL: Duration = Duration::from_secs(1);

    fn short_stall(settings: &mut Settings) {
        settings.pool.writer_stall = STALL;
    }

    /// Queues a write that holds the writer until `release` is dropped (at most 30 s).
    fn held_write(
        app: &TestApp,
        release: std::sync::mpsc::Receiver<()>,
    ) -> actix_web::rt::task::JoinHandle<()> {
        let writer = app.state.writer.clone();
        actix_web::rt::spawn(async move {
            writer
                .run(
                    WriteKind::Statement,
                    move |_conn| {
                        let _ = release.recv_timeout(Duration::from_secs(30));
                        Ok(())
                    },
                    |_| {},
                )
                .await
                .expect("the held write succeeds");
        })
    }

    async fn readyz(app: &TestApp) -> reqwest::Response {
        app.client.get(app.url("/readyz")).send().await.unwrap()
    }

    async fn readiness_fails_while_the_writer_is_stuck_and_recovers_when_it_moves(app: TestApp) {
        let (release, held) = std::sync::mpsc::channel();
        let stuck = held_write(&app, held);
        actix_web::rt::time::sleep(STALL / 5).await;
        assert_eq!(
            readyz(&app).await.status(),
            StatusCode::OK,
            "a write in progress for less than the bound is not a stall"
        );

        actix_web::rt::time::sleep(STALL * 2).await;
        let response = readyz(&app).await;
        assert_eq!(response.headers()["retry-after"], "1");
        let error = assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "stuck writer").await;
        assert_eq!(error["code"], "service_unavailable");

        drop(release);
        stuck.await.unwrap();
        let (status, body) = read(readyz(&app).await).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "ready again once the write is done: {body}"
        );
    }

    async fn a_busy_writer_that_keeps_finishing_writes_stays_ready(app: TestApp) {
        let busy = STALL * 3;
        let started = Instant::now();
        let writes: Vec<_> = (0..3)
            .map(|_| {
                let writer = app.state.writer.clone();
                actix_web::rt::spawn(async move {
                    while started.elapsed() < busy {
                        writer
                            .run(
                                WriteKind::Statement,
                                |_conn| {
                                    std::thread::sleep(STALL / 4);
                                    Ok(())
                                },
                                |_| {},
                            )
                            .await
                            .expect("a write succeeds");
                    }
                })
            })
            .collect();
        while started.elapsed() < busy {
            let (status, body) = read(readyz(&app).await).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "busy for {:?}, with writes always waiting: {body}",
                started.elapsed()
            );
            actix_web::rt::time::sleep(STALL / 4).await;
        }
        for write in writes {
            write.await.unwrap();
        }
    }
}

/// Drops the database under a running server: readiness and the API must answer 503 in the
/// envelope, not hang or crash. (PostgreSQL only: it is the backend that can go away.)
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests"
)]
async fn postgres_outage_gets_503_in_the_envelope() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let server_url = std::env::var("TEST_DATABASE_URL").unwrap();
    actix_web::web::block(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::PgConnection::establish(&server_url).unwrap();
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .unwrap();
    })
    .await
    .unwrap();

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    let error = assert_error(ready, StatusCode::SERVICE_UNAVAILABLE, "readyz").await;
    assert_eq!(error["type"], "server_error");

    let api = app.get(PATH).await;
    assert_eq!(api.headers()["retry-after"], "1");
    let error = assert_error(api, StatusCode::SERVICE_UNAVAILABLE, "list").await;
    assert_eq!(error["code"], "service_unavailable");
}

//! MCP access control (seed 002): every key carries an `mcp` policy, set on create and update
//! without escalation, copied by rotation, paused and resumed by the toggle, audited, and
//! enforced at forward auth and shown by introspection from the cache.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};
use crate::project_keys::{FORWARD, PROJECTS, forward, member_key, member_of, project};

backend_tests!(
    every_key_object_carries_its_mcp_policy,
    create_and_update_set_the_policy_field_by_field,
    invalid_mcp_policies_are_400s_naming_the_field,
    a_key_grants_only_mcp_access_its_own_policy_covers,
    rotation_copies_the_mcp_policy,
    the_toggle_flips_or_sets_mcp_access_and_is_audited,
    a_project_keys_toggle_takes_effect_on_the_next_check,
    forward_auth_enforces_the_mcp_policy_only_when_asked,
    forward_auth_reads_the_tool_from_a_json_rpc_body,
    introspection_shows_the_effective_policy_with_its_preset_resolved,
    a_cached_mcp_check_makes_no_database_statement,
);

const KEYS: &str = "/v1/organization/admin_api_keys";

/// A key made by the bootstrap key with every write scope and `mcp`: (id, value, object).
async fn key_with(app: &TestApp, mcp: Value) -> (String, String, Value) {
    let made = app
        .create_key(json!({
            "name": "mcp",
            "scopes": ["admin_api_keys.read", "admin_api_keys.write", "projects.read", "projects.write", "keys.introspect"],
            "mcp": mcp,
        }))
        .await;
    (
        made["id"].as_str().unwrap().to_owned(),
        made["value"].as_str().unwrap().to_owned(),
        made,
    )
}

fn toggle_path(key_id: &str) -> String {
    format!("{KEYS}/{key_id}/mcp/toggle")
}

async fn toggle(app: &TestApp, key_id: &str, body: Option<Value>) -> Value {
    let mut request = app.request(Method::POST, &toggle_path(key_id));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, body) = read(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn every_key_object_carries_its_mcp_policy(app: TestApp) {
    let (_, boot) = read(app.get(&format!("{KEYS}/{}", app.admin_key_id)).await).await;
    let everything = json!({
        "active": true, "preset": null, "instance_ids": [], "project_ids": [],
        "allowlist_mode": "all", "tool_allowlist": [], "read_only": false, "permissions": ["*"],
    });
    assert_eq!(boot["mcp"], everything, "bootstrap holds every MCP access");
    let made = app.create_named("plain").await;
    assert_eq!(
        made["mcp"], everything,
        "left out, a key gets its maker's policy"
    );
    let listed = app.list("limit=100").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["mcp"].is_object())
    );

    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    assert_eq!(key["mcp"], everything);
    let (_, listed) = read(app.get(&format!("{PROJECTS}/{project}/api_keys")).await).await;
    assert_eq!(listed["data"][0]["mcp"], everything);
    let path = format!("{PROJECTS}/{project}/service_accounts");
    let (status, account) = read(app.post_json(&path, &json!({ "name": "bot" })).await).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["api_key"]["mcp"], everything);
    let path = format!("{path}/{}/api_keys", account["id"].as_str().unwrap());
    let body = json!({ "mcp": { "read_only": true } });
    let (status, second) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["mcp"]["read_only"], true);
}

async fn create_and_update_set_the_policy_field_by_field(app: TestApp) {
    let (id, _, made) = key_with(
        &app,
        json!({ "tool_allowlist": ["search*", "get_page", "search*"], "read_only": true, "instance_ids": ["docs"] }),
    )
    .await;
    assert_eq!(
        made["mcp"]["allowlist_mode"], "allowlist",
        "a list given restricts"
    );
    assert_eq!(
        made["mcp"]["tool_allowlist"],
        json!(["get_page", "search*"])
    );
    assert_eq!(made["mcp"]["instance_ids"], json!(["docs"]));

    let path = format!("{KEYS}/{id}");
    let (status, changed) = read(
        app.post_json(&path, &json!({ "mcp": { "project_ids": ["p1"] } }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["mcp"]["project_ids"], json!(["p1"]));
    assert_eq!(
        changed["mcp"]["read_only"], true,
        "fields left out keep their value"
    );
    assert_eq!(changed["mcp"]["instance_ids"], json!(["docs"]));

    let body = json!({ "mcp": { "preset": "full" } });
    let (status, preset) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{preset}");
    assert_eq!(preset["mcp"]["preset"], "full");
    assert_eq!(
        preset["mcp"]["allowlist_mode"], "all",
        "the preset's fields win"
    );
    assert_eq!(preset["mcp"]["read_only"], false);
    let (_, shown) = read(app.get(&path).await).await;
    assert_eq!(shown["mcp"], preset["mcp"], "retrieve shows the same");

    let body = json!({ "mcp": { "preset": null } });
    let (_, cleared) = read(app.post_json(&path, &body).await).await;
    assert_eq!(cleared["mcp"]["preset"], Value::Null);
    assert_eq!(
        cleared["mcp"]["read_only"], true,
        "the key's own fields are back"
    );
}

async fn invalid_mcp_policies_are_400s_naming_the_field(app: TestApp) {
    let secretish = "sk-admin-abc def";
    let cases = [
        (json!({ "colour": "red" }), "mcp.colour"),
        (json!({ secretish: true }), "mcp"),
        (json!({ "read_only": "yes" }), "mcp.read_only"),
        (json!({ "active": null }), "mcp.active"),
        (json!({ "allowlist_mode": "some" }), "mcp.allowlist_mode"),
        (
            json!({ "tool_allowlist": ["ok", secretish] }),
            "mcp.tool_allowlist",
        ),
        (json!({ "tool_allowlist": ["a*b"] }), "mcp.tool_allowlist"),
        (json!({ "instance_ids": ["x*"] }), "mcp.instance_ids"),
        (
            json!({ "project_ids": (0..65).map(|n| format!("p{n}")).collect::<Vec<_>>() }),
            "mcp.project_ids",
        ),
        (json!({ "permissions": [""] }), "mcp.permissions"),
        (json!({ "preset": "nope" }), "mcp.preset"),
        (
            json!({ "preset": "read_only", "read_only": false }),
            "mcp.read_only",
        ),
        (json!("all"), "mcp"),
        (Value::Null, "mcp"),
    ];
    for (mcp, param) in cases {
        let body = json!({ "name": "bad", "mcp": mcp });
        let response = app.post_json(KEYS, &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &mcp.to_string()).await;
        assert_eq!(error["param"], param, "{mcp}: {error}");
        assert!(!error["message"].as_str().unwrap().contains(secretish));
        let update = json!({ "mcp": mcp });
        let response = app
            .post_json(&format!("{KEYS}/{}", app.admin_key_id), &update)
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &mcp.to_string()).await;
        assert_eq!(error["param"], param, "update {mcp}: {error}");
    }
}

async fn a_key_grants_only_mcp_access_its_own_policy_covers(app: TestApp) {
    let (granter_id, granter, _) = key_with(
        &app,
        json!({ "instance_ids": ["a", "b"], "tool_allowlist": ["search*"], "read_only": true, "permissions": ["docs:*"] }),
    )
    .await;
    let create = |mcp: Value| {
        let body = json!({ "name": "granted", "scopes": ["admin_api_keys.read"], "mcp": mcp });
        app.request_as(&granter, Method::POST, KEYS)
            .json(&body)
            .send()
    };
    for (mcp, field) in [
        (json!({ "instance_ids": [] }), "instance_ids"),
        (json!({ "instance_ids": ["c"] }), "instance_ids"),
        (json!({ "allowlist_mode": "all" }), "tool_allowlist"),
        (json!({ "tool_allowlist": ["delete"] }), "tool_allowlist"),
        (json!({ "read_only": false }), "read_only"),
        (json!({ "permissions": ["ops"] }), "permissions"),
        (json!({ "preset": "full" }), "tool_allowlist"),
    ] {
        let error = assert_error(
            create(mcp.clone()).await.unwrap(),
            StatusCode::FORBIDDEN,
            &mcp.to_string(),
        )
        .await;
        assert_eq!(error["code"], "mcp_exceeds_caller", "{mcp}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{mcp}: {error}"
        );
    }
    let narrower = json!({ "instance_ids": ["a"], "tool_allowlist": ["search_docs"], "permissions": ["docs:read"] });
    let (status, made) = read(create(narrower).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(
        made["mcp"]["read_only"], true,
        "fields left out are the granter's"
    );
    let (status, copied) = read(create(json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{copied}");
    assert_eq!(copied["mcp"]["instance_ids"], json!(["a", "b"]));

    // A paused granter grants paused keys only, and cannot resume one.
    toggle(&app, &granter_id, Some(json!({ "active": false }))).await;
    let error = assert_error(
        create(json!({ "active": true })).await.unwrap(),
        StatusCode::FORBIDDEN,
        "paused",
    )
    .await;
    assert_eq!(error["code"], "mcp_exceeds_caller");
    let (status, paused) = read(create(json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["mcp"]["active"], false);
    let resume = app
        .send_as(
            &granter,
            Method::POST,
            &toggle_path(paused["id"].as_str().unwrap()),
            None,
        )
        .await;
    let error = assert_error(resume, StatusCode::FORBIDDEN, "resume by a paused key").await;
    assert_eq!(error["code"], "mcp_exceeds_caller");
}

async fn rotation_copies_the_mcp_policy(app: TestApp) {
    let (id, _, made) = key_with(
        &app,
        json!({ "tool_allowlist": ["search*"], "project_ids": ["p1"] }),
    )
    .await;
    let path = format!("{KEYS}/{id}/rotate");
    let (status, rotated) = read(app.post_json(&path, &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["mcp"], made["mcp"]);
}

async fn the_toggle_flips_or_sets_mcp_access_and_is_audited(app: TestApp) {
    let (id, value, _) = key_with(&app, json!({})).await;
    assert_eq!(
        toggle(&app, &id, None).await["mcp"]["active"],
        false,
        "flips"
    );
    app.clock.advance(1);
    assert_eq!(
        toggle(&app, &id, None).await["mcp"]["active"],
        true,
        "and back"
    );
    app.clock.advance(1);
    let set = json!({ "active": false });
    assert_eq!(
        toggle(&app, &id, Some(set.clone())).await["mcp"]["active"],
        false
    );
    assert_eq!(
        toggle(&app, &id, Some(set)).await["mcp"]["active"],
        false,
        "sets"
    );
    let unversioned = format!("/organization/admin_api_keys/{id}/mcp/toggle");
    let (status, shown) = read(
        app.post_json(&unversioned, &json!({ "active": true }))
            .await,
    )
    .await;
    assert_eq!(
        (status, &shown["mcp"]["active"]),
        (StatusCode::OK, &json!(true))
    );

    // A paused key keeps working for everything else.
    toggle(&app, &id, Some(json!({ "active": false }))).await;
    let (status, _) = read(app.send_as(&value, Method::GET, KEYS, None).await).await;
    assert_eq!(status, StatusCode::OK);

    let (_, log) = read(
        app.get(&format!(
            "/v1/organization/audit_logs?resource_ids[]={id}&limit=100"
        ))
        .await,
    )
    .await;
    let updates: Vec<&Value> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "api_key.updated")
        .collect();
    assert_eq!(
        updates.len(),
        5,
        "a toggle that changes nothing records nothing: {log}"
    );
    assert!(
        updates
            .iter()
            .all(|u| u["api_key.updated"]["changes_requested"]["mcp"]["active"].is_boolean()),
        "each records the whole new policy: {log}"
    );

    for (body, param) in [
        (json!({ "active": "no" }), "active"),
        (json!({ "on": true }), "on"),
    ] {
        let response = app.post_json(&toggle_path(&id), &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, &body.to_string()).await;
        assert_eq!(error["param"], param);
    }
    let missing = app
        .post_json(&toggle_path("key_000000000000000000000000"), &json!({}))
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "unknown key").await;
    let get = app.get(&toggle_path(&id)).await;
    assert_error(get, StatusCode::METHOD_NOT_ALLOWED, "GET").await;
    let reader = app
        .create_key(json!({ "name": "reader", "scopes": ["admin_api_keys.read"] }))
        .await;
    let reader = reader["value"].as_str().unwrap();
    let refused = app
        .send_as(reader, Method::POST, &toggle_path(&id), None)
        .await;
    let error = assert_error(refused, StatusCode::FORBIDDEN, "read scope").await;
    assert_eq!(error["code"], "missing_scope.admin_api_keys.write");
}

async fn a_project_keys_toggle_takes_effect_on_the_next_check(app: TestApp) {
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    let (id, value) = (key["id"].as_str().unwrap(), key["value"].as_str().unwrap());
    let check = format!("{FORWARD}?mcp_tool=search&mcp_read_only=true");
    assert_eq!(forward(&app, value, &check).await.0, 200);
    let path = format!("{PROJECTS}/{project}/api_keys/{id}/mcp/toggle");
    let (status, paused) = read(app.request(Method::POST, &path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["object"], "organization.project.api_key");
    assert_eq!(paused["mcp"]["active"], false);
    let (status, code, _) = forward(&app, value, &check).await;
    assert_eq!((status, code), (403, json!("mcp_paused")));
    assert_eq!(
        forward(&app, value, FORWARD).await.0,
        200,
        "the rest still works"
    );
    let (status, _) = read(app.post_json(&path, &json!({ "active": true })).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(forward(&app, value, &check).await.0, 200);

    let (_, log) = read(
        app.get(&format!("/v1/organization/audit_logs?resource_ids[]={id}"))
            .await,
    )
    .await;
    let entry = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "api_key.updated")
        .expect("the toggle is recorded");
    assert_eq!(entry["project"]["id"], project.as_str(), "{entry}");
}

async fn forward_auth_enforces_the_mcp_policy_only_when_asked(app: TestApp) {
    let (id, value, _) = key_with(
        &app,
        json!({ "instance_ids": ["docs"], "project_ids": ["p1"], "tool_allowlist": ["search*", "write_page"], "read_only": true }),
    )
    .await;
    let at = |query: &str| format!("{FORWARD}?mcp_instance=docs&mcp_project=p1&{query}");
    let cases = [
        (
            at("mcp_tool=search_all&mcp_read_only=true"),
            200,
            Value::Null,
        ),
        (at("mcp_read_only=false"), 403, json!("mcp_read_only")),
        (at("mcp_tool=search_all"), 403, json!("mcp_read_only")),
        (
            at("mcp_tool=write_page&mcp_read_only=false"),
            403,
            json!("mcp_read_only"),
        ),
        (
            at("mcp_tool=delete&mcp_read_only=true"),
            403,
            json!("mcp_tool_not_allowed"),
        ),
        (
            format!("{FORWARD}?mcp_instance=wiki"),
            403,
            json!("mcp_instance_not_allowed"),
        ),
        (
            format!("{FORWARD}?mcp_instance=docs&mcp_project=p2"),
            403,
            json!("mcp_project_not_allowed"),
        ),
        (
            format!("{FORWARD}?mcp_instance=docs"),
            403,
            json!("mcp_project_not_allowed"),
        ),
        (at("mcp_tool="), 400, json!("invalid_mcp_parameter")),
        (at("mcp_tool=a%20b"), 400, json!("invalid_mcp_parameter")),
        (at("mcp_read_only=yes"), 400, json!("invalid_mcp_parameter")),
        (
            at("mcp_tool=a&mcp_tool=b"),
            400,
            json!("ambiguous_mcp_parameter"),
        ),
        (FORWARD.to_owned(), 200, Value::Null),
    ];
    for (path, status, code) in &cases {
        let (got, got_code, _) = forward(&app, &value, path).await;
        assert_eq!((got, &got_code), (*status, code), "{path}");
    }
    // The gateway's headers count as the parameters do, and must agree with them.
    let headers = |tool: &str| {
        app.request_as(&value, Method::GET, FORWARD)
            .header("X-Mcp-Instance", "docs")
            .header("X-Mcp-Project", "p1")
            .header("X-Mcp-Tool", tool)
            .header("X-Mcp-Read-Only", "true")
    };
    assert_eq!(headers("search").send().await.unwrap().status(), 200);
    assert_eq!(headers("delete").send().await.unwrap().status(), 403);
    let both = headers("search").query(&[("mcp_tool", "search_more")]);
    let error = assert_error(
        both.send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "disagree",
    )
    .await;
    assert_eq!(error["code"], "ambiguous_mcp_parameter");
    assert_eq!(error["param"], "mcp_tool");
    // On /forward-auth/{path} the query is the original request's: only headers count.
    let any_path = format!("{FORWARD}/mcp?mcp_tool=delete");
    assert_eq!(forward(&app, &value, &any_path).await.0, 200);
    let response = app
        .request_as(&value, Method::POST, &format!("{FORWARD}/mcp"))
        .header("X-Mcp-Instance", "wiki")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Paused: every MCP check is refused, a plain check still passes.
    toggle(&app, &id, Some(json!({ "active": false }))).await;
    let (status, code, _) = forward(&app, &value, &at("mcp_tool=search&mcp_read_only=true")).await;
    assert_eq!((status, code), (403, json!("mcp_paused")));
    assert_eq!(forward(&app, &value, FORWARD).await.0, 200);
}

async fn forward_auth_reads_the_tool_from_a_json_rpc_body(app: TestApp) {
    let (_, value, _) = key_with(&app, json!({ "tool_allowlist": ["search*"] })).await;
    let send = |body: Value, query: &str| {
        app.request_as(&value, Method::POST, &format!("{FORWARD}?{query}"))
            .json(&body)
            .send()
    };
    let call = |name: &str| json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": name, "arguments": {} } });
    assert_eq!(
        send(call("search_docs"), "mcp_instance=any")
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = send(call("delete_all"), "mcp_instance=any").await.unwrap();
    let error = assert_error(refused, StatusCode::FORBIDDEN, "body tool").await;
    assert_eq!(error["code"], "mcp_tool_not_allowed");
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    assert_eq!(send(list, "mcp_instance=any").await.unwrap().status(), 200);
    let disagree = send(call("delete_all"), "mcp_tool=search_docs")
        .await
        .unwrap();
    let error = assert_error(disagree, StatusCode::BAD_REQUEST, "disagree").await;
    assert_eq!(error["code"], "ambiguous_mcp_parameter");
    // Without an MCP parameter the body is not read for tools (the check is as before).
    assert_eq!(send(call("delete_all"), "").await.unwrap().status(), 200);
}

async fn introspection_shows_the_effective_policy_with_its_preset_resolved(app: TestApp) {
    let (_, value, _) = key_with(
        &app,
        json!({ "preset": "read_only", "instance_ids": ["docs"] }),
    )
    .await;
    let (status, answer) = read(
        app.request(Method::POST, "/v1/introspect")
            .json(&json!({ "token": value }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["mcp"]["preset"], "read_only");
    assert_eq!(answer["mcp"]["read_only"], true);
    assert_eq!(answer["mcp"]["instance_ids"], json!(["docs"]));
    assert_eq!(answer["key"]["mcp"], answer["mcp"], "{answer}");

    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let key = member_key(&app, &project, &user, &[]).await;
    let (_, answer) = read(
        app.request(Method::POST, "/v1/introspect")
            .json(&json!({ "token": key["value"] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["mcp"]["active"], true, "{answer}");
    let (_, inactive) = read(
        app.request(Method::POST, "/v1/introspect")
            .json(&json!({ "token": "sk-admin-nope" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(inactive, json!({ "active": false }));
}

async fn a_cached_mcp_check_makes_no_database_statement(app: TestApp) {
    let (_, value, _) = key_with(&app, json!({ "preset": "read_only" })).await;
    let project = project(&app).await;
    let user = member_of(&app, &project).await;
    let path = format!("{PROJECTS}/{project}/api_keys");
    let body = json!({ "user_id": user, "mcp": { "read_only": true } });
    let (status, project_key) = read(app.post_json(&path, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{project_key}");
    let project_key = project_key["value"].as_str().unwrap().to_owned();
    let check = format!("{FORWARD}?mcp_instance=docs&mcp_tool=search&mcp_read_only=true");
    for key in [&value, &project_key] {
        // Fill the cache; on PostgreSQL wait out the notifications of the setup, which would
        // otherwise drop an entry just filled.
        if app.state.cache.listening() {
            let now = app.state.cache.instant();
            app.state
                .cache
                .wait_for_sync_after(now, Duration::from_secs(5))
                .await;
        }
        let mut cached = false;
        for _ in 0..20 {
            let before = app.queries();
            assert_eq!(forward(&app, key, &check).await.0, 200);
            if app.queries() == before {
                cached = true;
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(cached, "the key was never served from the cache");
        let before = app.queries();
        for n in 0..20 {
            let path = format!("{FORWARD}?mcp_instance=i{n}&mcp_tool=t{n}&mcp_read_only=true");
            assert_eq!(forward(&app, key, &path).await.0, 200);
            let refused = format!("{FORWARD}?mcp_tool=t{n}&mcp_read_only=false");
            assert_eq!(forward(&app, key, &refused).await.0, 403);
        }
        assert_eq!(
            app.queries() - before,
            0,
            "a cached MCP check queried the database"
        );
    }
}

use admin_api_keys::openapi::document;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, read};

const COMMITTED: &str = "openapi/openapi.json";

#[test]
fn committed_openapi_document_matches_the_generated_one() {
    let generated = document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is out of date with the code. Regenerate it with\n\
         \n    cargo run --quiet -- openapi > {COMMITTED}\n\
         \n(or UPDATE_OPENAPI=1 cargo test --test api openapi) and commit the result."
    );
}

#[test]
fn the_document_carries_the_upstream_operation_ids_and_security() {
    let spec: Value = serde_json::from_str(&document()).unwrap();
    let ops = [
        ("/organization/admin_api_keys", "get", "admin-api-keys-list"),
        (
            "/organization/admin_api_keys",
            "post",
            "admin-api-keys-create",
        ),
        (
            "/organization/admin_api_keys/{key_id}",
            "get",
            "admin-api-keys-get",
        ),
        (
            "/organization/admin_api_keys/{key_id}",
            "post",
            "admin-api-keys-update",
        ),
        (
            "/organization/admin_api_keys/{key_id}",
            "delete",
            "admin-api-keys-delete",
        ),
        (
            "/organization/admin_api_keys/{key_id}/rotate",
            "post",
            "admin-api-keys-rotate",
        ),
        ("/organization/audit_logs", "get", "list-audit-logs"),
        ("/organization/users", "get", "list-users"),
        ("/organization/users/{user_id}", "get", "retrieve-user"),
        ("/organization/users/{user_id}", "post", "modify-user"),
        ("/organization/users/{user_id}", "delete", "delete-user"),
        ("/organization/invites", "get", "list-invites"),
        ("/organization/invites", "post", "inviteUser"),
        (
            "/organization/invites/{invite_id}",
            "get",
            "retrieve-invite",
        ),
        (
            "/organization/invites/{invite_id}",
            "delete",
            "delete-invite",
        ),
        ("/introspect", "post", "introspect-token"),
        ("/organization/projects", "get", "list-projects"),
        ("/organization/projects", "post", "create-project"),
        (
            "/organization/projects/{project_id}",
            "get",
            "retrieve-project",
        ),
        (
            "/organization/projects/{project_id}",
            "post",
            "modify-project",
        ),
        (
            "/organization/projects/{project_id}/archive",
            "post",
            "archive-project",
        ),
        (
            "/organization/projects/{project_id}/users",
            "get",
            "list-project-users",
        ),
        (
            "/organization/projects/{project_id}/users",
            "post",
            "create-project-user",
        ),
        (
            "/organization/projects/{project_id}/users/{user_id}",
            "get",
            "retrieve-project-user",
        ),
        (
            "/organization/projects/{project_id}/users/{user_id}",
            "post",
            "modify-project-user",
        ),
        (
            "/organization/projects/{project_id}/users/{user_id}",
            "delete",
            "delete-project-user",
        ),
        (
            "/organization/projects/{project_id}/rate_limits",
            "get",
            "list-project-rate-limits",
        ),
        (
            "/organization/projects/{project_id}/rate_limits/{rate_limit_id}",
            "post",
            "update-project-rate-limits",
        ),
        (
            "/organization/projects/{project_id}/service_accounts",
            "get",
            "list-project-service-accounts",
        ),
        (
            "/organization/projects/{project_id}/service_accounts",
            "post",
            "create-project-service-account",
        ),
        (
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            "get",
            "retrieve-project-service-account",
        ),
        (
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            "post",
            "update-project-service-account",
        ),
        (
            "/organization/projects/{project_id}/service_accounts/{service_account_id}",
            "delete",
            "delete-project-service-account",
        ),
        (
            "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys",
            "post",
            "CreateanAPIkeyforaserviceaccount",
        ),
        (
            "/organization/projects/{project_id}/api_keys",
            "get",
            "list-project-api-keys",
        ),
        (
            "/organization/projects/{project_id}/api_keys",
            "post",
            "create-project-api-key",
        ),
        (
            "/organization/projects/{project_id}/api_keys/{api_key_id}",
            "get",
            "retrieve-project-api-key",
        ),
        (
            "/organization/projects/{project_id}/api_keys/{api_key_id}",
            "delete",
            "delete-project-api-key",
        ),
        (
            "/organization/admin_api_keys/{key_id}/mcp/toggle",
            "post",
            "admin-api-keys-mcp-toggle",
        ),
        (
            "/organization/projects/{project_id}/api_keys/{api_key_id}/mcp/toggle",
            "post",
            "project-api-keys-mcp-toggle",
        ),
    ];
    // Accepting an invite needs no admin key: the invite's token is the credential.
    let accept = ("/organization/invites/accept", "post", "accept-invite");
    let operations = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|key| ["get", "post", "delete"].contains(&key.as_str()))
        .count();
    // Besides `ops`: accept and forward-auth below, and the probes (tests/api/docs.rs).
    assert_eq!(operations, ops.len() + 4, "every operation is listed here");
    for (path, method, id) in ops {
        let op = &spec["paths"][path][method];
        assert_eq!(op["operationId"], id);
        assert_eq!(
            op["security"],
            serde_json::json!([{ "AdminApiKeyAuth": [] }]),
            "{id}"
        );
        for status in ["200", "401", "403", "429", "500", "503"] {
            assert!(
                response(&spec, &op["responses"][status])["content"]["application/json"]
                    .is_object(),
                "{id} {status}"
            );
        }
        assert!(
            response(&spec, &op["responses"]["429"])["headers"]["Retry-After"].is_object(),
            "{id} 429 documents Retry-After"
        );
    }
    let (path, method, id) = accept;
    let op = &spec["paths"][path][method];
    assert_eq!(op["operationId"], id);
    assert!(op.get("security").is_none(), "{id} needs no admin key");
    assert!(
        spec.get("security").is_none(),
        "no operation inherits a requirement"
    );
    for status in ["200", "400", "409", "429", "500", "503"] {
        assert!(
            response(&spec, &op["responses"][status])["content"]["application/json"].is_object(),
            "{id} {status}"
        );
    }
    for status in ["401", "403"] {
        assert!(
            op["responses"].get(status).is_none(),
            "{id} never answers {status}"
        );
    }
    // Forward auth takes the key as a bearer token or in its own header, and answers 200
    // with headers and no body.
    let op = &spec["paths"]["/forward-auth"]["get"];
    assert_eq!(op["operationId"], "forward-auth");
    assert_eq!(
        op["security"],
        serde_json::json!([{ "AdminApiKeyAuth": [] }, { "ForwardAuthKeyHeader": [] }])
    );
    let ok = response(&spec, &op["responses"]["200"]);
    assert!(
        ok.get("content").is_none(),
        "forward-auth answers 200 without a body"
    );
    for header in [
        "X-Api-Key-Id",
        "X-Api-Key-Owner-Id",
        "X-Api-Key-Scopes",
        "X-Api-Key-Permissions",
    ] {
        assert!(
            ok["headers"][header].is_object(),
            "forward-auth 200 {header}"
        );
    }
    for status in ["400", "401", "403", "429", "500", "503"] {
        assert!(
            response(&spec, &op["responses"][status])["content"]["application/json"].is_object(),
            "forward-auth {status}"
        );
    }
    for (status, code) in [("401", "multiple_api_keys"), ("403", "missing_permission")] {
        let description = response(&spec, &op["responses"][status])["description"].to_string();
        assert!(
            description.contains(code),
            "forward-auth {status} names {code}"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["ForwardAuthKeyHeader"],
        serde_json::json!({
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": spec["components"]["securitySchemes"]["ForwardAuthKeyHeader"]["description"],
        })
    );
    assert_eq!(spec["servers"][0]["url"], "/v1");
    assert_eq!(
        spec["components"]["securitySchemes"]["AdminApiKeyAuth"]["scheme"],
        "bearer"
    );
    let required = spec["components"]["schemas"]["AdminApiKey"]["required"]
        .as_array()
        .unwrap();
    for field in [
        "object",
        "id",
        "redacted_value",
        "created_at",
        "expires_at",
        "owner",
    ] {
        assert!(
            required.contains(&Value::from(field)),
            "AdminApiKey.{field} must be required"
        );
    }
}

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();

    let (status, served) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert!(status.is_success());
    assert_eq!(served, serde_json::from_str::<Value>(&document()).unwrap());
}

/// A response object, following a `$ref` into `components/responses`.
fn response<'a>(spec: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .expect("a reference to a shared response");
            &spec["components"]["responses"][name]
        }
        None => response,
    }
}

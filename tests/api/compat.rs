//! The official-style OpenAI client (`async-openai`) works against us with only a base URL.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::admin::api_keys::CreateAdminApiKeyRequestArgs;

use crate::helpers::TestApp;

backend_tests!(async_openai_client_runs_the_whole_key_lifecycle);

fn client(app: &TestApp, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_key(key)
            .with_api_base(app.url("/v1")),
    )
}

async fn async_openai_client_runs_the_whole_key_lifecycle(app: TestApp) {
    let admin = client(&app, &app.admin_key);
    app.clock.advance(1); // so the new key sorts after the bootstrap key

    let request = CreateAdminApiKeyRequestArgs::default()
        .name("made by async-openai")
        .expires_in_seconds(3600u32)
        .build()
        .unwrap();
    let created = admin
        .admin()
        .api_keys()
        .create(request)
        .await
        .expect("create");
    assert_eq!(created.object, "organization.admin_api_key");
    assert_eq!(created.name.as_deref(), Some("made by async-openai"));
    assert!(created.value.starts_with("sk-admin-"));
    assert_eq!(created.owner.role, "owner");

    let first = admin
        .admin()
        .api_keys()
        .query(&[("limit", "1")])
        .unwrap()
        .list()
        .await
        .expect("list page 1");
    assert_eq!(first.data.len(), 1);
    assert!(first.has_more);
    let after = first.last_id.clone().unwrap();
    let second = admin
        .admin()
        .api_keys()
        .query(&[("limit", "1"), ("after", after.as_str())])
        .unwrap()
        .list()
        .await
        .expect("list page 2");
    assert_eq!(second.data[0].id, created.id);
    assert!(!second.has_more);

    let retrieved = admin
        .admin()
        .api_keys()
        .retrieve(&created.id)
        .await
        .expect("retrieve");
    assert_eq!(retrieved.id, created.id);
    assert_eq!(retrieved.expires_at, created.expires_at);

    // The new key works through the SDK too, then stops working once deleted.
    let newcomer = client(&app, &created.value);
    newcomer
        .admin()
        .api_keys()
        .list()
        .await
        .expect("the new key authenticates");
    let deleted = admin
        .admin()
        .api_keys()
        .delete(&created.id)
        .await
        .expect("delete");
    assert!(deleted.deleted);
    assert_eq!(deleted.object, "organization.admin_api_key.deleted");

    match newcomer.admin().api_keys().list().await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 401);
            assert_eq!(e.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("a deleted key must get a 401 API error, got {other:?}"),
    }
}

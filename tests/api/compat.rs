//! The official-style OpenAI client (`async-openai`) works against us with only a base URL.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::admin::api_keys::CreateAdminApiKeyRequestArgs;
use async_openai::types::admin::invites::{InviteRequestArgs, InviteStatus};
use async_openai::types::admin::roles::OrganizationRole;
use async_openai::types::admin::users::UserRoleUpdateRequestArgs;
use serde_json::json;

use crate::helpers::{TestApp, read};

backend_tests!(
    async_openai_client_runs_the_whole_key_lifecycle,
    async_openai_client_manages_users_and_invites,
    async_openai_client_manages_projects_members_and_rate_limits
);

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

async fn async_openai_client_manages_users_and_invites(app: TestApp) {
    let admin = client(&app, &app.admin_key);
    app.clock.advance(1);

    // Invites: create, list with paging, retrieve, delete.
    let mut invited = Vec::new();
    for email in ["ada@example.com", "grace@example.com"] {
        let request = InviteRequestArgs::default()
            .email(email)
            .role(OrganizationRole::Reader)
            .projects(vec![])
            .build()
            .unwrap();
        let invite = admin
            .admin()
            .invites()
            .create(request)
            .await
            .expect("invite");
        assert_eq!(invite.object, "organization.invite");
        assert_eq!(invite.status, InviteStatus::Pending);
        assert!(invite.projects.is_empty());
        invited.push(invite);
    }
    let first = admin
        .admin()
        .invites()
        .query(&[("limit", "1")])
        .unwrap()
        .list()
        .await
        .expect("invites page 1");
    assert_eq!(first.data.len(), 1);
    assert_eq!(first.has_more, Some(true));
    let second = admin
        .admin()
        .invites()
        .query(&[("limit", "1"), ("after", first.last_id.as_deref().unwrap())])
        .unwrap()
        .list()
        .await
        .expect("invites page 2");
    let mut paged: Vec<_> = first
        .data
        .iter()
        .chain(&second.data)
        .map(|i| i.id.clone())
        .collect();
    let mut made: Vec<_> = invited.iter().map(|i| i.id.clone()).collect();
    paged.sort();
    made.sort();
    assert_eq!(paged, made);
    let retrieved = admin
        .admin()
        .invites()
        .retrieve(&invited[1].id)
        .await
        .expect("retrieve invite");
    assert_eq!(retrieved.email, "grace@example.com");
    let deleted = admin
        .admin()
        .invites()
        .delete(&invited[1].id)
        .await
        .expect("delete invite");
    assert!(deleted.deleted);
    assert_eq!(deleted.object, "organization.invite.deleted");

    // The first invitee joins (the accept token travels outside OpenAI's API).
    let token = {
        let body = json!({ "email": "lin@example.com", "role": "reader" });
        let (_, invite) = read(app.post_json("/v1/organization/invites", &body).await).await;
        invite["accept_token"].as_str().unwrap().to_owned()
    };
    let accept = app
        .client
        .post(app.url("/v1/organization/invites/accept"))
        .json(&json!({ "token": token, "name": "Lin" }))
        .send()
        .await
        .unwrap();
    let (_, joined) = read(accept).await;
    let user_id = joined["user"]["id"].as_str().unwrap().to_owned();

    // Users: list with paging, retrieve, modify the role, delete.
    let page = admin
        .admin()
        .users()
        .query(&[("limit", "1")])
        .unwrap()
        .list()
        .await
        .expect("users page 1");
    assert_eq!(page.data.len(), 1);
    assert!(page.has_more);
    assert_eq!(page.data[0].id, app.owner_id);
    let next = admin
        .admin()
        .users()
        .query(&[("limit", "1"), ("after", page.last_id.as_deref().unwrap())])
        .unwrap()
        .list()
        .await
        .expect("users page 2");
    assert_eq!(next.data[0].id, user_id);
    assert!(!next.has_more);
    let user = admin
        .admin()
        .users()
        .retrieve(&user_id)
        .await
        .expect("retrieve user");
    assert_eq!(user.object, "organization.user");
    assert_eq!(user.role.as_deref(), Some("reader"));
    assert_eq!(user.email.as_deref(), Some("lin@example.com"));
    let promoted = admin
        .admin()
        .users()
        .modify(
            &user_id,
            UserRoleUpdateRequestArgs::default()
                .role("owner")
                .build()
                .unwrap(),
        )
        .await
        .expect("modify user");
    assert_eq!(promoted.role.as_deref(), Some("owner"));
    let removed = admin
        .admin()
        .users()
        .delete(&user_id)
        .await
        .expect("delete user");
    assert!(removed.deleted);
    assert_eq!(removed.object, "organization.user.deleted");
    match admin.admin().users().retrieve(&user_id).await {
        Err(OpenAIError::ApiError(e)) => assert_eq!(e.status_code.as_u16(), 404),
        other => panic!("a deleted user must be a 404, got {other:?}"),
    }
}

/// Projects, their members and their rate limits through async-openai's administration client.
/// Its list types for projects and project users declare `has_more` a string (upstream's
/// document says boolean, and so do we), so those two lists are read with plain HTTP.
async fn async_openai_client_manages_projects_members_and_rate_limits(app: TestApp) {
    use async_openai::types::admin::invites::ProjectMembership;
    use async_openai::types::admin::project_rate_limits::ProjectRateLimitUpdateRequestArgs;
    use async_openai::types::admin::project_users::{
        ProjectUserCreateRequestArgs, ProjectUserUpdateRequestArgs,
    };
    use async_openai::types::admin::projects::{ProjectCreateRequest, ProjectUpdateRequestArgs};

    let admin = client(&app, &app.admin_key);
    let admin = admin.admin();
    let projects = admin.projects();
    // The builder of this request has no defaults (it would need the deprecated `geography`).
    let request = ProjectCreateRequest {
        name: "made by async-openai".to_owned(),
        ..Default::default()
    };
    let made = projects.create(request).await.expect("create");
    assert!(made.id.starts_with("proj_"));
    assert_eq!(made.status.as_deref(), Some("active"));
    let update = ProjectUpdateRequestArgs::default()
        .name("renamed")
        .build()
        .unwrap();
    let renamed = projects
        .modify(made.id.clone(), update)
        .await
        .expect("modify");
    assert_eq!(renamed.name.as_deref(), Some("renamed"));
    assert_eq!(
        projects.retrieve(made.id.clone()).await.expect("retrieve"),
        renamed
    );

    let users = projects.users(&made.id);
    let add = ProjectUserCreateRequestArgs::default()
        .user_id(app.owner_id.clone())
        .role(ProjectMembership::Member)
        .build()
        .unwrap();
    let member = users.create(add).await.expect("add a member");
    assert_eq!(member.role, ProjectMembership::Member);
    let promote = ProjectUserUpdateRequestArgs::default()
        .role(ProjectMembership::Owner)
        .build()
        .unwrap();
    let promoted = users
        .modify(&app.owner_id, promote)
        .await
        .expect("modify member");
    assert_eq!(promoted.role, ProjectMembership::Owner);
    assert_eq!(
        users
            .retrieve(&app.owner_id)
            .await
            .expect("retrieve member"),
        promoted
    );

    let limits = projects.rate_limits(&made.id);
    let page = limits.list().await.expect("list rate limits");
    assert!(!page.has_more);
    assert!(page.data.is_empty(), "no model is configured or seen here");

    let removed = users.delete(&app.owner_id).await.expect("remove member");
    assert!(removed.deleted);
    let archived = projects.archive(made.id.clone()).await.expect("archive");
    assert_eq!(archived.status.as_deref(), Some("archived"));
    let refused = ProjectRateLimitUpdateRequestArgs::default()
        .max_requests_per_1_minute(1)
        .build()
        .unwrap();
    match limits.update("rl-gpt-4o", refused).await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(
                error.api_error.code.as_deref(),
                Some("project_archived"),
                "{error:?}"
            );
        }
        other => panic!("an archived project's limits cannot change: {other:?}"),
    }
    let (_, listed) = read(
        app.get("/v1/organization/projects?include_archived=true")
            .await,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], made.id.as_str());
}

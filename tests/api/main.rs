//! Integration tests: each drives a real server over HTTP on its own database.
//!
//! Tests written as `async fn name(app: TestApp)` are listed in `backend_tests!`, which runs
//! each once on SQLite and once on PostgreSQL (`sqlite::name`, `postgres::name`);
//! `backend_tests!(settings = f; ...)` starts their servers with the settings `f` changes.
//! Without `TEST_DATABASE_URL` the PostgreSQL tests are compiled as ignored (see build.rs).

/// Runs each listed `async fn(TestApp)` on both backends.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        backend_tests!(@with crate::helpers::unchanged; $($name),*);
    };
    (settings = $configure:ident; $($name:ident),* $(,)?) => {
        backend_tests!(@with super::$configure; $($name),*);
    };
    (@with $configure:path; $($name:ident),*) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let app = crate::helpers::TestApp::spawn_with(
                        crate::helpers::Backend::Sqlite,
                        $configure,
                    )
                    .await
                    .expect("SQLite is always available");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(postgres_tests), ignore = "set TEST_DATABASE_URL to run the PostgreSQL tests")]
                async fn $name() {
                    if let Some(app) = crate::helpers::TestApp::spawn_with(
                        crate::helpers::Backend::Postgres,
                        $configure,
                    )
                    .await
                    {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

mod audit;
mod auth;
mod authorize;
mod body_deadline;
mod browser;
mod cache;
mod caddy;
mod ceilings;
mod cli;
mod compat;
mod console;
mod contract;
mod create;
mod docs;
mod errors;
mod escalation;
mod expiry;
mod forward_auth;
mod helpers;
mod idempotency;
mod introspect;
mod invite_keys;
mod invite_projects;
mod invites;
mod key_set;
mod lifecycle;
mod list;
mod logs;
mod look_alikes;
mod mcp;
mod mcp_sdk;
mod member_details;
mod metrics;
mod model_rate_limits;
mod nginx;
mod openapi;
mod organisation;
mod outage;
mod paging;
mod permissions;
mod project_keys;
mod project_users;
mod projects;
mod rate_limit;
mod rate_limits_api;
mod raw;
mod readme;
mod replicas;
mod retrieve_delete;
mod roles;
mod rotate;
mod search;
mod service_accounts;
mod slow_clients;
mod upgrade;
mod usage;
mod users;

/// `.ci/run` must run the PostgreSQL half: under `CI`, ignored PostgreSQL tests are a failure.
#[test]
fn under_ci_the_postgresql_tests_are_not_ignored() {
    let built_for_postgres = cfg!(postgres_tests);
    if std::env::var_os("CI").is_some() {
        assert!(
            built_for_postgres,
            "CI is set but the suite was built without TEST_DATABASE_URL: the PostgreSQL tests would be skipped"
        );
    }
}

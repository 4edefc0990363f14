//! Row types and their queries, one file per table. Every function takes a connection and
//! returns `QueryResult`: no HTTP (that is `routes`) and no rules (that is `services`).

pub mod admin_api_key;
pub mod audit_log;
pub mod idempotency;
pub mod invite;
pub mod project;
pub mod project_api_key;
pub mod project_user;
pub mod rate_limit;
pub mod service_account;
pub mod user;

//! Row types and their queries, one file per table. Every function takes a connection and
//! returns `QueryResult`; mapping to HTTP happens in the routes.

pub mod admin_api_key;
pub mod audit_log;
pub mod user;

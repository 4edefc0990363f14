//! admin-api-keys: a self-hosted authority for administrative API keys whose HTTP API mirrors
//! OpenAI's Admin API Keys.

pub mod audit;
pub mod auth;
pub mod auth_cache;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod invalidation;
pub mod models;
pub mod openapi;
pub mod routes;
pub mod schema;
pub mod scopes;
pub mod startup;
pub mod usage;

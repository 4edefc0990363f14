//! admin-api-keys: a self-hosted authority for administrative API keys whose HTTP API mirrors
//! OpenAI's Admin API Keys.
//!
//! Layers, arrows pointing down only: `routes` (HTTP) → `services` (rules, transactions, audit
//! events, cache effects) → `models` (rows and queries) → `db`. Beside them, below `routes`:
//! `auth` (the bearer middleware), `cache` (in-process caches and their invalidation),
//! `audit` (events), `lookup_limit` (the per-client budget of lookups of unknown keys, kept by
//! `client_addr`), and the leaves `domain`, `ids`, `state`, `clock`, `error`, `metrics` (what
//! is counted, for `GET /metrics`). `startup`
//! wires everything together and nothing imports it; it runs the App on `server` (the HTTP
//! server with its per-connection deadlines), with `telemetry` saying what the log records
//! of each request. `extract` reads request bodies and query strings for `routes`.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod ids;
pub mod lookup_limit;
pub mod metrics;
pub mod model_limits;
pub mod models;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod schema;
pub mod server;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;

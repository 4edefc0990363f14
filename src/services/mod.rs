//! The rules, synchronous on `&mut DbConnection`: transactions, guards, audit events, and the
//! cache invalidations each change implies.
//!
//! Policy: a service function that changes anything returns a [`Change`]: its result plus the
//! [`Invalidation`]s it implies. The only way to get the result out is [`write`], which runs
//! the function in a transaction on the [`crate::db::Writer`] and applies the invalidations
//! right after the commit, on the writing thread, before anyone is answered (and even if the
//! client has gone away). A new write path therefore cannot forget them. Audit events are
//! written by the service in the same transaction as the change.

pub mod bootstrap;
pub mod caller;
pub mod emails;
pub mod guard;
pub mod idempotency;
pub mod invites;
pub mod keys;
pub mod mcp;
pub mod project_keys;
pub mod project_users;
pub mod projects;
pub mod rate_limits;
pub mod request_limits;
pub mod service_accounts;
pub mod usage;
pub mod users;

use crate::cache::{Cache, Invalidation};
use crate::db::{DbConnection, WriteKind};
use crate::error::ApiError;
use crate::state::AppState;

/// The result of a change and what it makes wrong in the caches.
#[must_use = "a change is applied by `services::write`"]
#[derive(Debug)]
pub struct Change<T> {
    value: T,
    invalidations: Vec<Invalidation>,
}

impl<T> Change<T> {
    pub fn new(value: T) -> Self {
        Self {
            value,
            invalidations: Vec::new(),
        }
    }

    /// Adds an invalidation to apply after the commit.
    pub fn invalidate(mut self, invalidation: Invalidation) -> Self {
        self.invalidations.push(invalidation);
        self
    }

    /// The same change, its result turned into another.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Change<U> {
        Change {
            value: f(self.value),
            invalidations: self.invalidations,
        }
    }

    /// Like [`Change::map`], with a step that can fail.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Change<U>, E> {
        Ok(Change {
            value: f(self.value)?,
            invalidations: self.invalidations,
        })
    }
}

/// Runs `change` in a write transaction, applies its invalidations to this process's caches
/// right after the commit, and returns its result.
pub async fn write<T, F>(state: &AppState, change: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<Change<T>, ApiError> + Send + 'static,
{
    run(state, WriteKind::Transaction, change).await
}

/// Like [`write`], for a change that is a single statement (atomic without a transaction).
pub async fn write_statement<T, F>(state: &AppState, change: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<Change<T>, ApiError> + Send + 'static,
{
    run(state, WriteKind::Statement, change).await
}

/// Runs `change` in a write transaction on `conn`, for a process with no caches (the
/// command line): its invalidations have nowhere to go here. Servers learn of the change
/// through the table triggers' `NOTIFY` on PostgreSQL, and on SQLite when their cached entries
/// run out (`AUTH_CACHE_TTL_SECS`).
pub fn write_offline<T, F>(conn: &mut DbConnection, change: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut DbConnection) -> Result<Change<T>, ApiError>,
{
    Ok(crate::db::write_transaction(conn, change)?.value)
}

async fn run<T, F>(state: &AppState, kind: WriteKind, change: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<Change<T>, ApiError> + Send + 'static,
{
    let cache = state.cache.clone();
    let apply = move |change: &Change<T>| change.apply(&cache);
    Ok(state.writer.run(kind, change, apply).await?.value)
}

impl<T> Change<T> {
    fn apply(&self, cache: &Cache) {
        for invalidation in &self.invalidations {
            cache.apply(invalidation);
        }
    }
}

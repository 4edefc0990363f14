//! Recording audit events in OpenAI's `/organization/audit_logs` shape.
//!
//! Policy: [`record`] takes the connection of the transaction that makes the change, so an
//! event exists exactly when its change does. Actors are keys (`type: api_key`); the
//! `bootstrap` command, which acts without a key, records a `session` actor whose user is the
//! owner it creates.

use diesel::prelude::*;
use serde_json::{Value, json};

use crate::auth::{AdminKey, random_id};
use crate::db::DbConnection;
use crate::models::audit_log::{self, AuditLogRow};
use crate::schema::users;

/// Event types this service records.
pub const API_KEY_CREATED: &str = "api_key.created";
pub const API_KEY_UPDATED: &str = "api_key.updated";
pub const API_KEY_DELETED: &str = "api_key.deleted";
/// Every recorded type, for validating the `event_types[]` filter.
pub const EVENT_TYPES: [&str; 3] = [API_KEY_CREATED, API_KEY_UPDATED, API_KEY_DELETED];

/// Who made a change.
#[derive(Clone, Debug)]
pub enum Actor {
    /// An admin key, with its owner.
    ApiKey {
        key_id: String,
        user_id: String,
        email: Option<String>,
    },
    /// A person at the command line (`bootstrap`).
    Session {
        user_id: String,
        email: Option<String>,
    },
}

impl Actor {
    /// The caller of an API request, with its owner's email looked up.
    pub fn of_key(conn: &mut DbConnection, caller: &AdminKey) -> QueryResult<Self> {
        let email = users::table
            .filter(users::id.eq(&caller.owner_id))
            .select(users::email)
            .first::<Option<String>>(conn)
            .optional()?
            .flatten();
        Ok(Actor::ApiKey {
            key_id: caller.key_id.clone(),
            user_id: caller.owner_id.clone(),
            email,
        })
    }

    /// The id the `actor_ids[]` filter matches: the key's id, or the session user's id.
    pub fn id(&self) -> &str {
        match self {
            Actor::ApiKey { key_id, .. } => key_id,
            Actor::Session { user_id, .. } => user_id,
        }
    }

    fn to_json(&self) -> Value {
        // The contract types `email` as a string: leave it out rather than send null.
        let user = |user_id: &str, email: &Option<String>| match email {
            Some(email) => json!({ "id": user_id, "email": email }),
            None => json!({ "id": user_id }),
        };
        match self {
            Actor::ApiKey {
                key_id,
                user_id,
                email,
            } => json!({
                "type": "api_key",
                "api_key": { "id": key_id, "type": "user", "user": user(user_id, email) }
            }),
            Actor::Session { user_id, email } => json!({
                "type": "session",
                "session": { "user": user(user_id, email) }
            }),
        }
    }
}

/// Appends one event. `details` is the object served under the event's type, e.g.
/// `{"id": "key_…", "data": {"scopes": [...]}}`.
pub fn record(
    conn: &mut DbConnection,
    effective_at: i64,
    actor: &Actor,
    event_type: &str,
    resource_id: &str,
    details: &Value,
) -> QueryResult<()> {
    audit_log::insert(
        conn,
        &AuditLogRow {
            id: random_id("audit_log-"),
            type_: event_type.to_owned(),
            effective_at,
            actor_id: actor.id().to_owned(),
            actor: actor.to_json().to_string(),
            resource_id: resource_id.to_owned(),
            details: details.to_string(),
        },
    )
}

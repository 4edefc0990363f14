//! First-run setup: an owner and an admin key, without an existing key to authenticate with.

use diesel::result::QueryResult;

use serde_json::json;

use crate::audit::{self, Actor};
use crate::auth::{self, ApiKeySecret};
use crate::db::DbConnection;
use crate::models::admin_api_key::{self, NewAdminApiKey};
use crate::models::user::{self, NewUser};
use crate::scopes::Scopes;

/// What bootstrap made.
#[derive(Debug)]
pub struct Bootstrapped {
    pub owner_id: String,
    pub key_id: String,
    pub secret: ApiKeySecret,
}

/// Creates a new owner and a first key for it holding every scope, and records
/// `api_key.created` with a `session` actor (the new owner), in one transaction. Never reveals existing keys.
pub fn create_owner_with_key(
    conn: &mut DbConnection,
    owner_name: &str,
    owner_email: Option<&str>,
    key_name: &str,
    now: i64,
) -> QueryResult<Bootstrapped> {
    let owner_id = auth::random_id("user_");
    let key_id = auth::random_id("key_");
    let secret = auth::generate_key();
    crate::db::write_transaction(conn, |conn| {
        user::insert(
            conn,
            &NewUser {
                id: &owner_id,
                name: owner_name,
                email: owner_email,
                role: "owner",
                created_at: now,
            },
        )?;
        let scopes = Scopes::all();
        admin_api_key::insert(
            conn,
            &NewAdminApiKey {
                id: &key_id,
                name: key_name,
                key_hash: &secret.hash(),
                redacted_value: &secret.redacted(),
                owner_id: &owner_id,
                created_at: now,
                expires_at: None,
                scopes: &scopes.to_db(),
            },
        )?;
        let actor = Actor::Session {
            user_id: owner_id.clone(),
            email: owner_email.map(str::to_owned),
        };
        let scopes: Vec<_> = scopes.iter().collect();
        let details = json!({
            "id": key_id,
            "data": { "scopes": scopes, "name": key_name, "expires_at": null }
        });
        audit::record(conn, now, &actor, audit::API_KEY_CREATED, &key_id, &details)
    })?;
    Ok(Bootstrapped {
        owner_id,
        key_id,
        secret,
    })
}

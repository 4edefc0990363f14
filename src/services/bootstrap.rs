//! First-run setup: an owner and an admin key, without an existing key to authenticate with.

use crate::audit::{self, Actor, AuditEvent, Origin};
use crate::db::{DbConnection, write_transaction};
use crate::domain::secret::ApiKeySecret;
use crate::domain::{Email, KeyLifetime, KeyName, Permissions, Role, Scopes};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key;
use crate::models::user::{self, User};
use crate::services::keys::{self, Spec};

/// What bootstrap made.
#[derive(Debug)]
pub struct Bootstrapped {
    pub owner_id: String,
    pub key_id: String,
    pub secret: ApiKeySecret,
}

/// What the first key holds (`bootstrap --scopes --permissions --expires-in-seconds`).
#[derive(Debug)]
pub struct FirstKey {
    pub scopes: Scopes,
    pub permissions: Permissions,
    pub lifetime: KeyLifetime,
}

impl Default for FirstKey {
    /// Every scope and every permission, no expiry.
    fn default() -> Self {
        Self {
            scopes: Scopes::all(),
            permissions: Permissions::all(),
            lifetime: KeyLifetime::default(),
        }
    }
}

/// [`create_owner_with`] a key holding every scope and permission that does not expire.
pub fn create_owner_with_key(
    conn: &mut DbConnection,
    owner_name: &KeyName,
    owner_email: Option<&Email>,
    key_name: &KeyName,
    now: i64,
) -> Result<Bootstrapped, ApiError> {
    create_owner_with(
        conn,
        owner_name,
        owner_email,
        key_name,
        FirstKey::default(),
        now,
    )
}

/// Creates a new owner and a first key for it holding what `first` says, with `api_key.created`
/// recorded by a `session` actor (the new owner), in one transaction. Never reveals existing
/// keys. Runs on its own connection (the CLI has no server, hence no caches to invalidate:
/// servers hear of the key through `NOTIFY` or find it on their first lookup of its hash).
/// The owner holds every scope and permission, so any `first` fits within them.
pub fn create_owner_with(
    conn: &mut DbConnection,
    owner_name: &KeyName,
    owner_email: Option<&Email>,
    key_name: &KeyName,
    first: FirstKey,
    now: i64,
) -> Result<Bootstrapped, ApiError> {
    let owner = User {
        id: ids::random_id(ids::USER),
        name: owner_name.as_str().to_owned(),
        email: owner_email.map(|email| email.as_str().to_owned()),
        role: Role::Owner.as_str().to_owned(),
        created_at: now,
        enabled: true,
        permissions: Role::Owner.default_permissions(),
        first_name: None,
        last_name: None,
        phone_number: None,
    };
    let issued = write_transaction(conn, |conn| {
        // The same lock as invites and their acceptance take: one member per email address.
        admin_api_key::lock_key_guard(conn)?;
        crate::services::emails::fill_missing(conn)?;
        if let Some(email) = owner_email
            && user::email_taken(conn, email.as_str())?
        {
            return Err(ApiError::Conflict {
                message: "A member already has this email address; bootstrap without \
                          `--owner-email`, or with another one."
                    .to_owned(),
                code: "email_taken",
            });
        }
        user::insert(conn, &owner)?;
        let actor = Actor::Session {
            user_id: owner.id.clone(),
            email: owner.email.clone(),
            // The command line: no client address or user agent to record.
            origin: Origin::default(),
        };
        let added = AuditEvent::UserAdded {
            user_id: owner.id.clone(),
            role: Role::Owner,
        };
        audit::record(conn, now, &actor, &added)?;
        let spec = Spec {
            name: key_name.as_str(),
            owner: &owner,
            scopes: first.scopes,
            permissions: first.permissions,
            expires_at: first.lifetime.expires_at(now),
            mcp: crate::domain::McpPolicy::everything(),
        };
        keys::issue(conn, &actor, spec, now)
    })?;
    Ok(Bootstrapped {
        owner_id: owner.id,
        key_id: issued.key.0.id,
        secret: issued.secret,
    })
}

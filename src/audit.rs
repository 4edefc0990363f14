//! Audit events in OpenAI's `/organization/audit_logs` shape.
//!
//! Policy: an event is one [`AuditEvent`] value, serialised here and nowhere else. [`record`]
//! takes the connection of the transaction that makes the change, so an event exists exactly
//! when its change does; the services record one for every change they make. Actors are
//! keys (`type: api_key`); what acts without a key records a `session` actor: the `bootstrap`
//! command (whose user is the owner it creates) and the acceptance of an invite (whose user
//! is the member it creates).
//!
//! Where a call came from: an actor of an HTTP request carries its [`Origin`], the client's
//! address (after `TRUSTED_PROXIES`, see `client_addr`) and its `User-Agent`, stored in their
//! own columns and served inside the actor object: `actor.session.ip_address` and
//! `actor.session.user_agent` where upstream has them, and likewise `actor.api_key.ip_address`
//! and `actor.api_key.user_agent` for a key (an extension). Both are left out when unknown (the
//! command line, rows older than the columns, a client hidden behind a malformed
//! `X-Forwarded-For`). The user agent is client text: it is stored redacted as the access log
//! shows it (no secret is ever stored), and cut at [`MAX_USER_AGENT`] characters.

use std::fmt;
use std::net::IpAddr;

use diesel::QueryResult;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::db::DbConnection;
use crate::domain::rate_limits::Limits;
use crate::domain::{McpPolicy, Permissions, ProjectRole, Role, Scopes};
use crate::ids;
use crate::models::audit_log::{self, AuditLogRow};

/// The types of event this service records (the values of `type` and of `event_types[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    ApiKeyCreated,
    ApiKeyUpdated,
    ApiKeyDeleted,
    InviteSent,
    InviteAccepted,
    InviteDeleted,
    UserAdded,
    UserUpdated,
    UserDeleted,
    ProjectCreated,
    ProjectUpdated,
    ProjectArchived,
    RateLimitUpdated,
    ServiceAccountCreated,
    ServiceAccountUpdated,
    ServiceAccountDeleted,
}

impl EventType {
    /// Every type, for validating the `event_types[]` filter.
    pub const ALL: [EventType; 16] = [
        EventType::ApiKeyCreated,
        EventType::ApiKeyUpdated,
        EventType::ApiKeyDeleted,
        EventType::InviteSent,
        EventType::InviteAccepted,
        EventType::InviteDeleted,
        EventType::UserAdded,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::ProjectCreated,
        EventType::ProjectUpdated,
        EventType::ProjectArchived,
        EventType::RateLimitUpdated,
        EventType::ServiceAccountCreated,
        EventType::ServiceAccountUpdated,
        EventType::ServiceAccountDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyUpdated => "api_key.updated",
            EventType::ApiKeyDeleted => "api_key.deleted",
            EventType::InviteSent => "invite.sent",
            EventType::InviteAccepted => "invite.accepted",
            EventType::InviteDeleted => "invite.deleted",
            EventType::UserAdded => "user.added",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::ProjectCreated => "project.created",
            EventType::ProjectUpdated => "project.updated",
            EventType::ProjectArchived => "project.archived",
            EventType::RateLimitUpdated => "rate_limit.updated",
            EventType::ServiceAccountCreated => "service_account.created",
            EventType::ServiceAccountUpdated => "service_account.updated",
            EventType::ServiceAccountDeleted => "service_account.deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A key was made (by create, rotate or bootstrap).
    KeyCreated {
        key_id: String,
        name: String,
        scopes: Scopes,
        permissions: Permissions,
        expires_at: Option<i64>,
        /// Its MCP policy as stored (left out of the details when it is the default).
        mcp: McpPolicy,
    },
    /// A key was changed; only the fields that were set are present.
    KeyUpdated {
        key_id: String,
        changes: KeyChangesRequested,
    },
    /// A key was deleted.
    KeyDeleted { key_id: String },
    /// An invite was made.
    InviteSent {
        invite_id: String,
        email: String,
        role: Role,
    },
    /// An invite was accepted (by the user it made).
    InviteAccepted { invite_id: String },
    /// An invite was withdrawn.
    InviteDeleted { invite_id: String },
    /// A user joined, by accepting an invite (or by `bootstrap`).
    UserAdded { user_id: String, role: Role },
    /// A user was changed; only the fields that were set are present.
    UserUpdated {
        user_id: String,
        changes: UserChangesRequested,
    },
    /// A user was deleted, with their keys.
    UserDeleted { user_id: String },
    /// A project was made.
    ProjectCreated { project_id: String, name: String },
    /// A project was changed; only the fields that were set are present.
    ProjectUpdated {
        project_id: String,
        changes: ProjectChangesRequested,
    },
    /// A project was archived.
    ProjectArchived { project_id: String },
    /// A member was added to a project (upstream's `user.added`, with the project).
    ProjectUserAdded {
        project_id: String,
        user_id: String,
        role: ProjectRole,
    },
    /// A project member's role changed (upstream's `user.updated`, with the project).
    ProjectUserUpdated {
        project_id: String,
        user_id: String,
        role: ProjectRole,
    },
    /// A member left a project (upstream's `user.deleted`, with the project).
    ProjectUserRemoved { project_id: String, user_id: String },
    /// A project's limits for a model changed: `rate_limit_id` is `rl-<model>`.
    RateLimitUpdated {
        project_id: String,
        rate_limit_id: String,
        changes: Limits,
    },
    /// A service account was made in a project.
    ServiceAccountCreated {
        project_id: String,
        service_account_id: String,
        role: String,
    },
    /// A service account was changed; only the fields that were set are present.
    ServiceAccountUpdated {
        project_id: String,
        service_account_id: String,
        changes: ServiceAccountChangesRequested,
    },
    /// A service account was deleted, with its keys.
    ServiceAccountDeleted {
        project_id: String,
        service_account_id: String,
    },
    /// A project key was made (upstream's `api_key.created`, with the project).
    ProjectKeyCreated {
        project_id: String,
        key_id: String,
        name: String,
        scopes: Permissions,
        /// Its MCP policy as stored (left out of the details when it is the default).
        mcp: McpPolicy,
    },
    /// A project key was deleted (upstream's `api_key.deleted`, with the project).
    ProjectKeyDeleted { project_id: String, key_id: String },
    /// A project key was changed (`api_key.updated`, with the project): so far only its MCP
    /// policy (the toggle).
    ProjectKeyUpdated {
        project_id: String,
        key_id: String,
        changes: KeyChangesRequested,
    },
}

/// The `changes_requested` of `service_account.updated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceAccountChangesRequested {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<ProjectRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `changes_requested` of `project.updated`: upstream calls the name `title`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProjectChangesRequested {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The new external key id (`null` when cleared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_key_id: Option<Option<String>>,
}

/// The `changes_requested` of `user.updated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserChangesRequested {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The new permission ceiling, when the change set or reset it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// Member details (seed 000): the new value, `null` when the change cleared it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<Option<String>>,
    /// Only the country code and the last two digits (`PhoneNumber::masked`): the log is
    /// kept for good, so it does not keep a contact number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<Option<String>>,
}

/// The `changes_requested` of `api_key.updated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KeyChangesRequested {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Scopes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// The key's whole new MCP policy (as stored), when the change set any of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpPolicy>,
    /// The old key's new expiry, when a rotation moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The key a rotation made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<String>,
}

/// A key made with the default MCP policy says nothing of it (the details stay as before).
fn default_mcp(mcp: &&McpPolicy) -> bool {
    mcp.is_default()
}

// The details objects, as served under the event's type.
#[derive(Serialize)]
struct Created<'a> {
    id: &'a str,
    data: CreatedData<'a>,
}

#[derive(Serialize)]
struct CreatedData<'a> {
    scopes: Scopes,
    name: &'a str,
    expires_at: Option<i64>,
    permissions: &'a Permissions,
    #[serde(skip_serializing_if = "default_mcp")]
    mcp: &'a McpPolicy,
}

#[derive(Serialize)]
struct Updated<'a> {
    id: &'a str,
    changes_requested: &'a KeyChangesRequested,
}

#[derive(Serialize)]
struct Deleted<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct InviteSentJson<'a> {
    id: &'a str,
    data: InviteData<'a>,
}

#[derive(Serialize)]
struct InviteData<'a> {
    email: &'a str,
    role: Role,
}

#[derive(Serialize)]
struct UserAddedJson<'a> {
    id: &'a str,
    data: UserAddedData,
}

#[derive(Serialize)]
struct UserAddedData {
    role: Role,
}

#[derive(Serialize)]
struct UserUpdatedJson<'a> {
    id: &'a str,
    changes_requested: &'a UserChangesRequested,
}

#[derive(Serialize)]
struct ProjectCreatedJson<'a> {
    id: &'a str,
    data: ProjectCreatedData<'a>,
}

#[derive(Serialize)]
struct ProjectCreatedData<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct ChangesJson<'a, T> {
    id: &'a str,
    changes_requested: T,
}

#[derive(Serialize)]
struct ProjectRoleJson {
    role: ProjectRole,
}

#[derive(Serialize)]
struct ProjectUserAddedJson<'a> {
    id: &'a str,
    data: ProjectRoleJson,
}

#[derive(Serialize)]
struct ServiceAccountCreatedJson<'a> {
    id: &'a str,
    data: ServiceAccountCreatedData<'a>,
}

#[derive(Serialize)]
struct ServiceAccountCreatedData<'a> {
    role: &'a str,
}

#[derive(Serialize)]
struct ServiceAccountUpdatedJson<'a> {
    id: &'a str,
    changes_requested: &'a ServiceAccountChangesRequested,
}

#[derive(Serialize)]
struct ProjectKeyCreatedJson<'a> {
    id: &'a str,
    data: ProjectKeyCreatedData<'a>,
}

#[derive(Serialize)]
struct ProjectKeyCreatedData<'a> {
    scopes: &'a Permissions,
    name: &'a str,
    #[serde(skip_serializing_if = "default_mcp")]
    mcp: &'a McpPolicy,
}

impl AuditEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            AuditEvent::KeyCreated { .. } => EventType::ApiKeyCreated,
            AuditEvent::KeyUpdated { .. } => EventType::ApiKeyUpdated,
            AuditEvent::KeyDeleted { .. } => EventType::ApiKeyDeleted,
            AuditEvent::InviteSent { .. } => EventType::InviteSent,
            AuditEvent::InviteAccepted { .. } => EventType::InviteAccepted,
            AuditEvent::InviteDeleted { .. } => EventType::InviteDeleted,
            AuditEvent::UserAdded { .. } => EventType::UserAdded,
            AuditEvent::UserUpdated { .. } => EventType::UserUpdated,
            AuditEvent::UserDeleted { .. } => EventType::UserDeleted,
            AuditEvent::ProjectCreated { .. } => EventType::ProjectCreated,
            AuditEvent::ProjectUpdated { .. } => EventType::ProjectUpdated,
            AuditEvent::ProjectArchived { .. } => EventType::ProjectArchived,
            AuditEvent::ProjectUserAdded { .. } => EventType::UserAdded,
            AuditEvent::ProjectUserUpdated { .. } => EventType::UserUpdated,
            AuditEvent::ProjectUserRemoved { .. } => EventType::UserDeleted,
            AuditEvent::RateLimitUpdated { .. } => EventType::RateLimitUpdated,
            AuditEvent::ServiceAccountCreated { .. } => EventType::ServiceAccountCreated,
            AuditEvent::ServiceAccountUpdated { .. } => EventType::ServiceAccountUpdated,
            AuditEvent::ServiceAccountDeleted { .. } => EventType::ServiceAccountDeleted,
            AuditEvent::ProjectKeyCreated { .. } => EventType::ApiKeyCreated,
            AuditEvent::ProjectKeyDeleted { .. } => EventType::ApiKeyDeleted,
            AuditEvent::ProjectKeyUpdated { .. } => EventType::ApiKeyUpdated,
        }
    }

    /// The project the event is scoped to (the entry's `project`), if any.
    pub fn project_id(&self) -> Option<&str> {
        match self {
            AuditEvent::ProjectCreated { project_id, .. }
            | AuditEvent::ProjectUpdated { project_id, .. }
            | AuditEvent::ProjectArchived { project_id }
            | AuditEvent::ProjectUserAdded { project_id, .. }
            | AuditEvent::ProjectUserUpdated { project_id, .. }
            | AuditEvent::ProjectUserRemoved { project_id, .. }
            | AuditEvent::RateLimitUpdated { project_id, .. }
            | AuditEvent::ServiceAccountCreated { project_id, .. }
            | AuditEvent::ServiceAccountUpdated { project_id, .. }
            | AuditEvent::ServiceAccountDeleted { project_id, .. }
            | AuditEvent::ProjectKeyCreated { project_id, .. }
            | AuditEvent::ProjectKeyDeleted { project_id, .. }
            | AuditEvent::ProjectKeyUpdated { project_id, .. } => Some(project_id),
            _ => None,
        }
    }

    /// The object the event is about.
    pub fn resource_id(&self) -> &str {
        match self {
            AuditEvent::KeyCreated { key_id, .. }
            | AuditEvent::KeyUpdated { key_id, .. }
            | AuditEvent::KeyDeleted { key_id } => key_id,
            AuditEvent::InviteSent { invite_id, .. }
            | AuditEvent::InviteAccepted { invite_id }
            | AuditEvent::InviteDeleted { invite_id } => invite_id,
            AuditEvent::UserAdded { user_id, .. }
            | AuditEvent::UserUpdated { user_id, .. }
            | AuditEvent::UserDeleted { user_id }
            | AuditEvent::ProjectUserAdded { user_id, .. }
            | AuditEvent::ProjectUserUpdated { user_id, .. }
            | AuditEvent::ProjectUserRemoved { user_id, .. } => user_id,
            AuditEvent::ProjectCreated { project_id, .. }
            | AuditEvent::ProjectUpdated { project_id, .. }
            | AuditEvent::ProjectArchived { project_id } => project_id,
            AuditEvent::RateLimitUpdated { rate_limit_id, .. } => rate_limit_id,
            AuditEvent::ServiceAccountCreated {
                service_account_id, ..
            }
            | AuditEvent::ServiceAccountUpdated {
                service_account_id, ..
            }
            | AuditEvent::ServiceAccountDeleted {
                service_account_id, ..
            } => service_account_id,
            AuditEvent::ProjectKeyCreated { key_id, .. }
            | AuditEvent::ProjectKeyDeleted { key_id, .. }
            | AuditEvent::ProjectKeyUpdated { key_id, .. } => key_id,
        }
    }

    /// The details in OpenAI's shape, e.g. `{"id": "key_…", "data": {"scopes": [...]}}`.
    pub fn details_json(&self) -> String {
        let json = match self {
            AuditEvent::KeyCreated {
                key_id,
                name,
                scopes,
                permissions,
                expires_at,
                mcp,
            } => serde_json::to_string(&Created {
                id: key_id,
                data: CreatedData {
                    scopes: *scopes,
                    name,
                    expires_at: *expires_at,
                    permissions,
                    mcp,
                },
            }),
            AuditEvent::KeyUpdated { key_id, changes }
            | AuditEvent::ProjectKeyUpdated {
                key_id, changes, ..
            } => serde_json::to_string(&Updated {
                id: key_id,
                changes_requested: changes,
            }),
            AuditEvent::KeyDeleted { key_id }
            | AuditEvent::InviteAccepted { invite_id: key_id }
            | AuditEvent::InviteDeleted { invite_id: key_id }
            | AuditEvent::UserDeleted { user_id: key_id }
            | AuditEvent::ProjectArchived { project_id: key_id }
            | AuditEvent::ProjectUserRemoved {
                user_id: key_id, ..
            }
            | AuditEvent::ServiceAccountDeleted {
                service_account_id: key_id,
                ..
            }
            | AuditEvent::ProjectKeyDeleted { key_id, .. } => {
                serde_json::to_string(&Deleted { id: key_id })
            }
            AuditEvent::ServiceAccountCreated {
                service_account_id,
                role,
                ..
            } => serde_json::to_string(&ServiceAccountCreatedJson {
                id: service_account_id,
                data: ServiceAccountCreatedData { role },
            }),
            AuditEvent::ServiceAccountUpdated {
                service_account_id,
                changes,
                ..
            } => serde_json::to_string(&ServiceAccountUpdatedJson {
                id: service_account_id,
                changes_requested: changes,
            }),
            AuditEvent::ProjectKeyCreated {
                key_id,
                name,
                scopes,
                mcp,
                ..
            } => serde_json::to_string(&ProjectKeyCreatedJson {
                id: key_id,
                data: ProjectKeyCreatedData { scopes, name, mcp },
            }),
            AuditEvent::ProjectCreated { project_id, name } => {
                serde_json::to_string(&ProjectCreatedJson {
                    id: project_id,
                    data: ProjectCreatedData { name },
                })
            }
            AuditEvent::ProjectUpdated {
                project_id,
                changes,
            } => serde_json::to_string(&ChangesJson {
                id: project_id,
                changes_requested: changes,
            }),
            AuditEvent::ProjectUserAdded { user_id, role, .. } => {
                serde_json::to_string(&ProjectUserAddedJson {
                    id: user_id,
                    data: ProjectRoleJson { role: *role },
                })
            }
            AuditEvent::ProjectUserUpdated { user_id, role, .. } => {
                serde_json::to_string(&ChangesJson {
                    id: user_id,
                    changes_requested: ProjectRoleJson { role: *role },
                })
            }
            AuditEvent::RateLimitUpdated {
                rate_limit_id,
                changes,
                ..
            } => serde_json::to_string(&ChangesJson {
                id: rate_limit_id,
                changes_requested: changes,
            }),
            AuditEvent::InviteSent {
                invite_id,
                email,
                role,
            } => serde_json::to_string(&InviteSentJson {
                id: invite_id,
                data: InviteData { email, role: *role },
            }),
            AuditEvent::UserAdded { user_id, role } => serde_json::to_string(&UserAddedJson {
                id: user_id,
                data: UserAddedData { role: *role },
            }),
            AuditEvent::UserUpdated { user_id, changes } => {
                serde_json::to_string(&UserUpdatedJson {
                    id: user_id,
                    changes_requested: changes,
                })
            }
        };
        json.expect("audit details are plain data and always serialise")
    }
}

/// The longest user agent an entry keeps, in characters; longer ones are cut, marked `…`.
pub const MAX_USER_AGENT: usize = 256;

/// Where a call came from; empty for the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address, after `TRUSTED_PROXIES`; `None` when it cannot be told.
    pub ip_address: Option<IpAddr>,
    /// The `User-Agent`, redacted and bounded (see the module policy).
    pub user_agent: Option<String>,
}

impl Origin {
    /// The origin of a request from `ip_address` that sent `user_agent` (the header's bytes).
    pub fn new(ip_address: Option<IpAddr>, user_agent: Option<&[u8]>) -> Self {
        let user_agent = user_agent.map(|value| {
            let text = crate::telemetry::loggable_user_agent(value);
            match text.char_indices().nth(MAX_USER_AGENT) {
                None => text.into_owned(),
                Some((end, _)) => format!("{}…", &text[..end]),
            }
        });
        Self {
            ip_address,
            user_agent,
        }
    }
}

/// Who made a change.
#[derive(Clone, Debug)]
pub enum Actor {
    /// An admin key, with its owner.
    ApiKey {
        key_id: String,
        user_id: String,
        email: Option<String>,
        origin: Origin,
    },
    /// A person at the command line (`bootstrap`), or accepting an invite.
    Session {
        user_id: String,
        email: Option<String>,
        origin: Origin,
    },
}

// The actor objects. The contract types `email` as a string: leave it out rather than send null.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ActorJson<'a> {
    ApiKey { api_key: ApiKeyActor<'a> },
    Session { session: SessionActor<'a> },
}

#[derive(Serialize)]
struct ApiKeyActor<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    user: UserJson<'a>,
}

#[derive(Serialize)]
struct SessionActor<'a> {
    user: UserJson<'a>,
}

#[derive(Serialize)]
struct UserJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

impl Actor {
    /// The id the `actor_ids[]` filter matches: the key's id, or the session user's id.
    pub fn id(&self) -> &str {
        match self {
            Actor::ApiKey { key_id, .. } => key_id,
            Actor::Session { user_id, .. } => user_id,
        }
    }

    /// The user behind the actor (the key's owner, or the session's user), for the
    /// `owner_id` filter.
    pub fn user_id(&self) -> &str {
        match self {
            Actor::ApiKey { user_id, .. } | Actor::Session { user_id, .. } => user_id,
        }
    }

    /// Where the call came from.
    pub fn origin(&self) -> &Origin {
        match self {
            Actor::ApiKey { origin, .. } | Actor::Session { origin, .. } => origin,
        }
    }

    /// The actor as stored; the origin is stored in its own columns (see [`served_actor`]).
    fn to_json(&self) -> String {
        let json = match self {
            Actor::ApiKey {
                key_id,
                user_id,
                email,
                ..
            } => ActorJson::ApiKey {
                api_key: ApiKeyActor {
                    id: key_id,
                    kind: "user",
                    user: UserJson {
                        id: user_id,
                        email: email.as_deref(),
                    },
                },
            },
            Actor::Session { user_id, email, .. } => ActorJson::Session {
                session: SessionActor {
                    user: UserJson {
                        id: user_id,
                        email: email.as_deref(),
                    },
                },
            },
        };
        serde_json::to_string(&json).expect("an actor is plain data and always serialises")
    }
}

/// The actor object an entry serves: the stored `actor` with the origin columns appended to
/// its inner object (`api_key` or `session`, the one its `type` names), members in the order
/// written. `None` (serve as stored) when there is no origin, or for an actor this service did
/// not write.
pub fn served_actor(
    actor: &str,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        api_key: Option<&'a RawValue>,
        #[serde(borrow)]
        session: Option<&'a RawValue>,
    }
    if ip_address.is_none() && user_agent.is_none() {
        return None;
    }
    let stored: Stored = serde_json::from_str(actor).ok()?;
    let (kind, inner) = match stored.kind {
        "api_key" => ("api_key", stored.api_key?),
        "session" => ("session", stored.session?),
        _ => return None,
    };
    let written = inner.get().strip_prefix('{')?.strip_suffix('}')?.trim();
    let mut members: Vec<String> = Vec::with_capacity(3);
    if !written.is_empty() {
        members.push(written.to_owned());
    }
    let added = [("ip_address", ip_address), ("user_agent", user_agent)];
    for (name, value) in added {
        if let Some(value) = value {
            members.push(format!("\"{name}\":{}", json_string(value)));
        }
    }
    Some(format!(
        "{{\"type\":\"{kind}\",\"{kind}\":{{{}}}}}",
        members.join(",")
    ))
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serialises")
}

/// Appends one event, in the transaction of the change it records.
pub fn record(
    conn: &mut DbConnection,
    effective_at: i64,
    actor: &Actor,
    event: &AuditEvent,
) -> QueryResult<()> {
    audit_log::insert(conn, &entry(effective_at, actor, event))
}

/// The row [`record`] writes for `event`, for a write that stores it with its own change.
pub fn entry(effective_at: i64, actor: &Actor, event: &AuditEvent) -> AuditLogRow {
    AuditLogRow {
        id: ids::random_id(ids::AUDIT_LOG),
        type_: event.event_type().as_str().to_owned(),
        effective_at,
        actor_id: actor.id().to_owned(),
        actor: actor.to_json(),
        resource_id: event.resource_id().to_owned(),
        details: event.details_json(),
        actor_user_id: Some(actor.user_id().to_owned()),
        ip_address: actor.origin().ip_address.map(|ip| ip.to_string()),
        user_agent: actor.origin().user_agent.clone(),
        project_id: event.project_id().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    #[test]
    fn events_serialise_in_openais_shape() {
        let created = AuditEvent::KeyCreated {
            key_id: "key_1".into(),
            name: "ci".into(),
            scopes: [Scope::AdminApiKeysRead].into_iter().collect(),
            permissions: Permissions::default(),
            expires_at: None,
            mcp: McpPolicy::default(),
        };
        let updated = AuditEvent::KeyUpdated {
            key_id: "key_1".into(),
            changes: KeyChangesRequested {
                enabled: Some(false),
                ..Default::default()
            },
        };
        let cases = [
            (
                created,
                r#"{"id":"key_1","data":{"scopes":["admin_api_keys.read"],"name":"ci","expires_at":null,"permissions":[]}}"#,
            ),
            (
                updated,
                r#"{"id":"key_1","changes_requested":{"enabled":false}}"#,
            ),
            (
                AuditEvent::KeyDeleted {
                    key_id: "key_1".into(),
                },
                r#"{"id":"key_1"}"#,
            ),
            (
                AuditEvent::InviteSent {
                    invite_id: "invite-1".into(),
                    email: "ada@example.com".into(),
                    role: Role::Reader,
                },
                r#"{"id":"invite-1","data":{"email":"ada@example.com","role":"reader"}}"#,
            ),
            (
                AuditEvent::UserAdded {
                    user_id: "user_1".into(),
                    role: Role::Owner,
                },
                r#"{"id":"user_1","data":{"role":"owner"}}"#,
            ),
            (
                AuditEvent::UserUpdated {
                    user_id: "user_1".into(),
                    changes: UserChangesRequested {
                        role: Some(Role::Reader),
                        enabled: Some(false),
                        ..Default::default()
                    },
                },
                r#"{"id":"user_1","changes_requested":{"role":"reader","enabled":false}}"#,
            ),
            (
                AuditEvent::UserDeleted {
                    user_id: "user_1".into(),
                },
                r#"{"id":"user_1"}"#,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(event.details_json(), expected, "{:?}", event.event_type());
        }
    }

    #[test]
    fn actors_leave_out_a_missing_email() {
        let actor = Actor::ApiKey {
            key_id: "key_1".into(),
            user_id: "user_1".into(),
            email: None,
            origin: Origin::default(),
        };
        assert_eq!(
            actor.to_json(),
            r#"{"type":"api_key","api_key":{"id":"key_1","type":"user","user":{"id":"user_1"}}}"#
        );
    }

    #[test]
    fn the_origin_is_served_inside_the_actor_after_what_was_stored() {
        let key =
            r#"{"type":"api_key","api_key":{"id":"key_1","type":"user","user":{"id":"user_1"}}}"#;
        let session = r#"{"type":"session","session":{"user":{"id":"user_1"}}}"#;
        let cases = [
            (key, None, None, None, "no origin: served as stored"),
            (
                key,
                Some("192.0.2.1"),
                Some("curl/8.5.0"),
                Some(
                    r#"{"type":"api_key","api_key":{"id":"key_1","type":"user","user":{"id":"user_1"},"ip_address":"192.0.2.1","user_agent":"curl/8.5.0"}}"#,
                ),
                "a key's request",
            ),
            (
                session,
                None,
                Some("say \"hi\""),
                Some(
                    r#"{"type":"session","session":{"user":{"id":"user_1"},"user_agent":"say \"hi\""}}"#,
                ),
                "a session's user agent only, escaped",
            ),
            (
                r#"{"type":"session","session":{}}"#,
                Some("2001:db8::1"),
                None,
                Some(r#"{"type":"session","session":{"ip_address":"2001:db8::1"}}"#),
                "an empty inner object",
            ),
            (
                "not json",
                Some("192.0.2.1"),
                None,
                None,
                "garbage is served as stored",
            ),
            (
                r#"{"type":"robot","robot":{}}"#,
                Some("192.0.2.1"),
                None,
                None,
                "an unknown actor type",
            ),
        ];
        for (stored, ip, agent, served, why) in cases {
            let got = served_actor(stored, ip, agent);
            assert_eq!(got.as_deref(), served, "{why}");
            if let Some(got) = got {
                serde_json::from_str::<serde_json::Value>(&got).expect(why);
            }
        }
    }

    #[test]
    fn a_user_agent_is_stored_redacted_and_bounded() {
        let ip = Some("192.0.2.1".parse().unwrap());
        assert_eq!(
            Origin::new(ip, Some(b"curl/8.5.0")).user_agent.as_deref(),
            Some("curl/8.5.0")
        );
        let secret = crate::domain::secret::generate_key();
        let leaky = format!("bot {}", secret.expose());
        let stored = Origin::new(ip, Some(leaky.as_bytes())).user_agent.unwrap();
        assert!(!stored.contains(secret.expose()), "{stored}");
        let long = "é".repeat(MAX_USER_AGENT + 50);
        let stored = Origin::new(None, Some(long.as_bytes())).user_agent.unwrap();
        assert_eq!(
            stored.chars().count(),
            MAX_USER_AGENT + 1,
            "cut, with a mark"
        );
        assert!(stored.ends_with('…'));
        assert_eq!(Origin::new(None, None), Origin::default());
    }
}

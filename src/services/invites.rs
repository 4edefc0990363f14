//! Invites: asking someone to join, withdrawing the ask, and accepting it.
//!
//! Policy: every membership change (an invite made, withdrawn or accepted; a bootstrapped
//! owner) first takes the lock-out guard's lock, so on PostgreSQL they run one at a time and
//! an email address belongs to at most one member or pending invite. An invite's accept token
//! is the only credential acceptance needs; it is shown once (in the create response), stored
//! only as its SHA-256, and works once. Every way a token can be unusable (malformed, unknown,
//! withdrawn, expired, already used) gets the same refusal, so the answer tells a guesser
//! nothing. Inviting needs `users.write` and every scope the invitee's first key will hold
//! (the role's ceiling): an invite cannot be used to mint a key stronger than its maker.
//! An invite carries the authority of the key that made it too: deleting or disabling that
//! key withdraws its pending invites (each audited `invite.deleted`, see `services::keys`),
//! rotating it hands them to the successor, and an invite whose key has expired cannot be
//! accepted. Invites made before keys were recorded are bound to their maker only.
//! An invite may grant projects (OpenAI's `projects`): making it needs `projects.write` and
//! active projects, and the new member joins those still active when they accept.

use diesel::QueryResult;

use crate::audit::{self, Actor, AuditEvent, Origin};
use crate::auth::{AdminKey, require_scope};
use crate::cache::Invalidation;
use crate::db::DbConnection;
use crate::domain::secret::{self, ApiKeySecret};
use crate::domain::{
    Email, KeyName, Permissions, PersonName, PhoneNumber, ProjectRole, Role, Scope, Scopes,
    derived_name,
};
use crate::error::ApiError;
use crate::ids;
use crate::models::admin_api_key::{self, RowLock};
use crate::models::invite::{self, Invite, NewInvite};
use crate::models::invite_project::{self, InviteProject};
use crate::models::project;
use crate::models::project_user::{self, ProjectUser};
use crate::models::user::{self, User};
use crate::services::caller::{Target, authorize};
use crate::services::keys::{self, Issued, Spec};
use crate::services::projects::active_project;
use crate::services::{Change, emails};

/// The name of the key an accepted invite issues.
pub const FIRST_KEY_NAME: &str = "First key (from invite)";

/// What an invite asks for; validated at the edge.
#[derive(Debug)]
pub struct NewInviteRequest {
    pub email: Email,
    pub role: Role,
    /// Member details the invitee gets on acceptance (unless they send their own).
    pub details: MemberDetails,
    /// The projects the invitee joins on acceptance, each once, with its role.
    pub projects: Vec<(String, ProjectRole)>,
}

/// A member's optional details (seed 000), as an invite or an acceptance carries them.
#[derive(Clone, Debug, Default)]
pub struct MemberDetails {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub phone_number: Option<PhoneNumber>,
}

/// What the invitee sends with the token: a `name`, and details that take the place of the
/// invite's.
#[derive(Clone, Debug, Default)]
pub struct Acceptance {
    pub name: Option<KeyName>,
    pub details: MemberDetails,
    /// When the member's first key expires: the organisation's default lifetime policy.
    pub first_key_expires_at: Option<i64>,
}

/// An invite just made and its accept token (shown once).
#[derive(Debug)]
pub struct Created {
    pub invite: Invite,
    pub token: ApiKeySecret,
    /// The projects it grants.
    pub projects: Vec<InviteProject>,
}

/// What accepting an invite made: the member and their first key.
#[derive(Debug)]
pub struct Accepted {
    pub user: User,
    pub issued: Issued,
}

/// The 404 for an invite id that does not exist.
pub fn no_such_invite(invite_id: &str) -> ApiError {
    let message = match ids::ours(invite_id) {
        Some(id) => format!("No invite with id `{id}` exists."),
        None => {
            "No invite has this id (invite ids are `invite-` and 24 letters or digits).".to_owned()
        }
    };
    ApiError::NotFound {
        message,
        param: Some("invite_id"),
    }
}

/// The one refusal of an unusable accept token, whatever made it unusable.
pub fn invalid_invite_token() -> ApiError {
    ApiError::InvalidRequest {
        message: "This invite token cannot be used: it may be mistyped, withdrawn, expired or \
                  already used. Ask an owner of the organisation for a new invite."
            .to_owned(),
        param: Some("token".to_owned()),
        code: Some("invalid_invite_token"),
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        message: "A member of the organisation already has this email address.".to_owned(),
        code: "email_taken",
    }
}

/// A pending invite for `new.email`, valid for `ttl_secs` from `now`. Refused with 409 if a
/// member has the address or a pending invite exists for it (an expired one does not count).
pub fn create(
    conn: &mut DbConnection,
    key: &AdminKey,
    new: NewInviteRequest,
    ttl_secs: i64,
    now: i64,
) -> Result<Change<Created>, ApiError> {
    admin_api_key::lock_key_guard(conn)?;
    let caller = authorize(conn, key, Scope::UsersWrite, Target::Nothing, now)?;
    if let Some(scope) = new.role.ceiling().missing_from(caller.scopes).first() {
        return Err(ApiError::Forbidden {
            message: format!(
                "Inviting a `{}` needs every scope their first key will hold, and this key \
                 lacks `{scope}`.",
                new.role
            ),
            code: format!("missing_scope.{scope}"),
        });
    }
    // A member's permission ceiling is theirs from the start (every permission for an
    // owner): making an owner needs a caller who covers it, as promoting one does.
    caller.may_grant_permissions(&new.role.default_permissions())?;
    check_grants(conn, caller.scopes, &new.projects)?;
    emails::fill_missing(conn)?;
    let email = new.email.as_str();
    let skeleton = new.email.skeleton();
    if user::email_taken(conn, email)? {
        return Err(email_taken());
    }
    if invite::pending_for(conn, &skeleton, now)? {
        return Err(ApiError::Conflict {
            message: "A pending invite for this email address exists already: delete it first \
                      to send a new one."
                .to_owned(),
            code: "invite_pending",
        });
    }
    let token = secret::generate_invite_token();
    let made = invite::insert(
        conn,
        &NewInvite {
            id: &ids::random_id(ids::INVITE),
            email,
            role: new.role.as_str(),
            token_hash: &token.hash(),
            created_at: now,
            expires_at: now.saturating_add(ttl_secs),
            invited_by: Some(&caller.owner.id),
            invited_by_key: caller.key_id.as_deref(),
            email_skeleton: &skeleton,
            first_name: new.details.first_name.as_ref().map(PersonName::as_str),
            last_name: new.details.last_name.as_ref().map(PersonName::as_str),
            phone_number: new.details.phone_number.as_ref().map(PhoneNumber::as_str),
        },
    )?;
    let projects = new
        .projects
        .into_iter()
        .map(|(project_id, role)| InviteProject {
            invite_id: made.id.clone(),
            project_id,
            role: role.as_str().to_owned(),
        })
        .collect::<Vec<_>>();
    invite_project::insert_all(conn, &projects)?;
    let event = AuditEvent::InviteSent {
        invite_id: made.id.clone(),
        email: made.email.clone(),
        role: new.role,
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(Created {
        invite: made,
        token,
        projects,
    }))
}

/// Checks that `caller` may grant the memberships of `projects`: it holds `projects.write`
/// (as adding a member needs) and each project exists and is active (held `Share` until the
/// transaction ends, so it is not archived in between).
fn check_grants(
    conn: &mut DbConnection,
    caller: Scopes,
    projects: &[(String, ProjectRole)],
) -> Result<(), ApiError> {
    if projects.is_empty() {
        return Ok(());
    }
    require_scope(caller, Scope::ProjectsWrite)?;
    for (project_id, _) in projects {
        // The project errors name `project_id`, a path parameter elsewhere; here it is the
        // body's `projects`.
        match active_project(conn, project_id, RowLock::Share) {
            Ok(_) => {}
            Err(ApiError::NotFound { message, .. }) => {
                return Err(ApiError::NotFound {
                    message,
                    param: Some("projects"),
                });
            }
            Err(ApiError::InvalidRequest { message, code, .. }) => {
                return Err(ApiError::InvalidRequest {
                    message,
                    param: Some("projects".to_owned()),
                    code,
                });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Adds the new member `member` to the projects the invite `invite_id` grants that are still
/// active (an archived one is skipped: it takes no members), each recorded as `user.added`
/// with its project. Returns the projects joined.
fn join_projects(
    conn: &mut DbConnection,
    actor: &Actor,
    invite_id: &str,
    member: &User,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let mut joined = Vec::new();
    for grant in invite_project::of_invites(conn, &[invite_id])? {
        let active = project::lock(conn, &grant.project_id, RowLock::Share)?
            .is_some_and(|found| !found.is_archived());
        if !active {
            continue;
        }
        let role = ProjectRole::from_db(&grant.role);
        project_user::insert(
            conn,
            &ProjectUser {
                project_id: grant.project_id.clone(),
                user_id: member.id.clone(),
                role: role.as_str().to_owned(),
                added_at: now,
            },
        )?;
        let event = AuditEvent::ProjectUserAdded {
            project_id: grant.project_id.clone(),
            user_id: member.id.clone(),
            role,
        };
        audit::record(conn, now, actor, &event)?;
        joined.push(grant.project_id);
    }
    Ok(joined)
}

/// Withdraws the invite `invite_id`, pending or expired; an accepted one stays (409).
pub fn delete(
    conn: &mut DbConnection,
    key: &AdminKey,
    invite_id: &str,
    now: i64,
) -> Result<Change<()>, ApiError> {
    if !ids::plausible(invite_id) {
        return Err(no_such_invite(invite_id));
    }
    admin_api_key::lock_key_guard(conn)?;
    let caller = authorize(conn, key, Scope::UsersWrite, Target::Nothing, now)?;
    let found = invite::find(conn, invite_id)?.ok_or_else(|| no_such_invite(invite_id))?;
    if found.accepted_at.is_some() {
        return Err(ApiError::Conflict {
            message: "This invite was accepted and stays as the record of it; to remove the \
                      member, delete the user instead."
                .to_owned(),
            code: "invite_accepted",
        });
    }
    if !invite::delete(conn, invite_id)? {
        return Err(no_such_invite(invite_id));
    }
    let event = AuditEvent::InviteDeleted {
        invite_id: invite_id.to_owned(),
    };
    audit::record(conn, now, &caller.actor(), &event)?;
    Ok(Change::new(()))
}

/// Whether the invite whose token hashes to `token_hash` can be accepted at `now` (a read,
/// outside any write: [`accept`] checks again under its lock).
pub fn is_pending(conn: &mut DbConnection, token_hash: &str, now: i64) -> QueryResult<bool> {
    Ok(invite::find_by_token_hash(conn, token_hash)?
        .is_some_and(|found| found.accepted_at.is_none() && now < found.expires_at))
}

/// Accepts the invite whose token is `token`: makes the member (the invite's email and role;
/// the first and last name and phone number sent, else the invite's; the `name` sent, else
/// the one derived from the first and last names, else a 400), marks the invite accepted and
/// issues the member's first key, holding the role's every scope, all recorded by a `session`
/// actor for the new member, coming from `origin`. `token` must be well formed (the caller
/// checks before opening the transaction).
pub fn accept(
    conn: &mut DbConnection,
    token: &str,
    acceptance: Acceptance,
    origin: Origin,
    now: i64,
) -> Result<Change<Accepted>, ApiError> {
    if !secret::is_well_formed_invite_token(token) {
        return Err(invalid_invite_token());
    }
    admin_api_key::lock_key_guard(conn)?;
    let found = invite::find_by_token_hash(conn, &secret::hash_key(token))?
        .filter(|found| found.accepted_at.is_none() && now < found.expires_at)
        .ok_or_else(invalid_invite_token)?;
    // The invite carries its maker's authority: it is void while they are disabled or no
    // longer an owner (and deleted with them).
    let inviter = match invite::inviter_of(conn, &found.id)? {
        Some(inviter) => {
            user::lock(conn, &[&inviter], RowLock::Share)?;
            user::find(conn, &inviter)?
        }
        None => None,
    };
    if !inviter.is_some_and(|inviter| inviter.enabled && inviter.role() == Role::Owner) {
        return Err(invalid_invite_token());
    }
    // And its key's: deleting or disabling the key withdraws the invite (`services::keys`),
    // and one that expired (not by rotation: that hands its invites on) voids it.
    if let Some(key_id) = &found.invited_by_key {
        let live = admin_api_key::find(conn, key_id)?
            .is_some_and(|(key, _)| key.enabled && key.expires_at.is_none_or(|end| now < end));
        if !live {
            return Err(invalid_invite_token());
        }
    }
    emails::fill_missing(conn)?;
    if user::email_taken(conn, &found.email)? {
        return Err(email_taken());
    }
    let role = found.role();
    let sent = acceptance.details;
    let first_name = sent
        .first_name
        .map(PersonName::into_string)
        .or(found.first_name);
    let last_name = sent
        .last_name
        .map(PersonName::into_string)
        .or(found.last_name);
    let name = match acceptance.name {
        Some(name) => name.into_string(),
        None => derived_name(first_name.as_deref(), last_name.as_deref()).ok_or_else(|| {
            ApiError::invalid_param(
                "name",
                "`name` is required: this invite carries no first or last name to make one \
                 from, and none was sent.",
            )
        })?,
    };
    let member = User {
        id: ids::random_id(ids::USER),
        name,
        email: Some(found.email.clone()),
        role: role.as_str().to_owned(),
        created_at: now,
        enabled: true,
        permissions: role.default_permissions(),
        first_name,
        last_name,
        phone_number: sent
            .phone_number
            .map(PhoneNumber::into_string)
            .or(found.phone_number),
    };
    user::insert(conn, &member)?;
    if !invite::mark_accepted(conn, &found.id, &member.id, now)? {
        return Err(invalid_invite_token());
    }
    let actor = Actor::Session {
        user_id: member.id.clone(),
        email: member.email.clone(),
        origin,
    };
    let accepted = AuditEvent::InviteAccepted {
        invite_id: found.id.clone(),
    };
    audit::record(conn, now, &actor, &accepted)?;
    let added = AuditEvent::UserAdded {
        user_id: member.id.clone(),
        role,
    };
    audit::record(conn, now, &actor, &added)?;
    join_projects(conn, &actor, &found.id, &member, now)?;
    let spec = Spec {
        name: FIRST_KEY_NAME,
        owner: &member,
        scopes: role.ceiling(),
        // Permissions are the operator's to hand out, key by key: a first key has none.
        permissions: Permissions::default(),
        expires_at: acceptance.first_key_expires_at,
        // As its scopes (the role's), not the inviter's: every MCP access.
        mcp: crate::domain::McpPolicy::default(),
    };
    let issued = keys::issue(conn, &actor, spec, now)?;
    let created = Invalidation::created(&issued.secret);
    Ok(Change::new(Accepted {
        user: member,
        issued,
    })
    .invalidate(created))
}

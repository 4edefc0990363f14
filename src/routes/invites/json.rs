//! Wire types of the invites resource, following OpenAI's `organization.invite` contract;
//! `accept_token` in the create response and the whole acceptance are extensions.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_PERSON_NAME_CHARS, ProjectRole, Role};
use crate::extract::RequestBody;
use crate::models::invite::{Invite, InviteStatus};
use crate::models::invite_project;
use crate::routes::admin_api_keys::json::AdminApiKeyCreateResponse;
use crate::routes::users::json::UserJson;

/// The most projects one invite may grant.
pub const MAX_INVITE_PROJECTS: usize = 100;

/// Always `organization.invite`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum InviteObject {
    #[serde(rename = "organization.invite")]
    Invite,
}

/// Always `organization.invite.deleted`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum InviteDeletedObject {
    #[serde(rename = "organization.invite.deleted")]
    Deleted,
}

/// A project the invitee joins on accepting the invite, and their role there.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteProject {
    /// The project's id.
    #[schema(example = "proj_4vQ8nL2xK7mT9pR3wZ6cB1hY")]
    pub id: String,
    /// `member` or `owner`.
    #[schema(value_type = ProjectRole)]
    pub role: String,
}

impl From<invite_project::InviteProject> for InviteProject {
    fn from(row: invite_project::InviteProject) -> Self {
        Self {
            id: row.project_id,
            role: row.role,
        }
    }
}

/// An invitation to join the organisation. Its accept token is never part of this object.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Invite)]
pub struct InviteJson {
    pub object: InviteObject,
    /// Identifier of the invite, used in the URLs of this API.
    #[schema(example = "invite-3hT8kQ2mW9xL4pR7vN1cZ6bY")]
    pub id: String,
    /// The invited address, lower-cased.
    #[schema(example = "grace@example.com")]
    pub email: String,
    /// The role the invitee gets on accepting: `owner` or `reader`.
    pub role: Role,
    /// `pending` until accepted or expired; `accepted` once it made a member; `expired` once
    /// `expires_at` has passed unaccepted.
    pub status: InviteStatus,
    /// When the invite was made, in Unix seconds.
    #[schema(example = 1763891200)]
    pub created_at: i64,
    /// When the invite stops being acceptable, in Unix seconds.
    #[schema(example = 1764496000)]
    pub expires_at: i64,
    /// When the invite was accepted, in Unix seconds; `null` until then.
    #[schema(required = true, example = json!(null))]
    pub accepted_at: Option<i64>,
    /// The projects the invitee joins on accepting (those still active then), with their
    /// role in each.
    pub projects: Vec<InviteProject>,
    /// The invitee's first name, theirs on acceptance (an extension, from seed 000); `null`
    /// when not given.
    #[schema(required = true, example = "Grace")]
    pub first_name: Option<String>,
    /// The invitee's last name (an extension); `null` when not given.
    #[schema(required = true, example = "Hopper")]
    pub last_name: Option<String>,
    /// The invitee's phone number in E.164 form (an extension); `null` when not given.
    #[schema(required = true, example = "+436761234568")]
    pub phone_number: Option<String>,
}

impl InviteJson {
    /// The wire form of `invite`, its status as of `now`.
    pub fn shown(invite: Invite, projects: Vec<InviteProject>, now: i64) -> Self {
        Self {
            object: InviteObject::Invite,
            status: invite.status(now),
            role: invite.role(),
            id: invite.id,
            email: invite.email,
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            accepted_at: invite.accepted_at,
            projects,
            first_name: invite.first_name,
            last_name: invite.last_name,
            phone_number: invite.phone_number,
        }
    }
}

/// The answer to a create: the invite plus its accept token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteCreateResponse {
    #[serde(flatten)]
    pub invite: InviteJson,
    /// The secret the invitee accepts the invite with (an extension: this service sends no
    /// email). Pass it on privately: the service keeps only a hash and cannot show it again.
    #[schema(example = "sk-invite-7GmQ2xV9cL1pT8rW4zK6nB3hJ5yD0fA2sE7uR9iOqW1c2B")]
    pub accept_token: String,
}

/// Confirmation of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteDeleted {
    pub object: InviteDeletedObject,
    /// Id of the deleted invite.
    pub id: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The address to invite. Compared case-insensitively: it must belong to no member and
    /// have no pending invite.
    #[schema(value_type = String, required = true, example = "grace@example.com")]
    pub email: Option<String>,
    /// The role the invitee will have: `owner` or `reader`. Inviting needs every scope that
    /// role allows, since the invitee's first key holds them all.
    #[schema(value_type = Role, required = true)]
    pub role: Option<Role>,
    /// Projects the invitee joins on accepting, each at most once, with the role they get
    /// there (at most 100). Each must exist and not be archived, and granting them needs the
    /// `projects.write` scope. A project archived before the acceptance is skipped then.
    #[schema(nullable = true, max_items = 100)]
    pub projects: Option<Vec<InviteProject>>,
    /// The invitee's first name (an extension): 1 to 100 characters. It becomes the member's
    /// on acceptance, unless they send their own.
    #[schema(nullable = true, max_length = 100, example = "Grace")]
    pub first_name: Option<String>,
    /// The invitee's last name (an extension): as `first_name`.
    #[schema(nullable = true, max_length = 100, example = "Hopper")]
    pub last_name: Option<String>,
    /// The invitee's phone number (an extension), in E.164 form (`+`, country code and number,
    /// digits only) and assigned by its country's numbering plan.
    #[schema(nullable = true, example = "+436761234568")]
    pub phone_number: Option<String>,
}

impl RequestBody for InviteRequest {
    const FIELDS: &'static [&'static str] = &[
        "email",
        "role",
        "projects",
        "first_name",
        "last_name",
        "phone_number",
    ];

    fn expects(field: &str) -> String {
        match field {
            "email" => format!("an email address of at most {MAX_EMAIL_CHARS} characters"),
            "role" => "`owner` or `reader`".to_owned(),
            "first_name" | "last_name" => expects_person_name(),
            "phone_number" => expects_phone(),
            _ => format!(
                "an array of at most {MAX_INVITE_PROJECTS} objects with a project `id` and a \
                 `role` (`owner` or `member`)"
            ),
        }
    }
}

/// Body of an acceptance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The `accept_token` of the invite's create response.
    #[schema(value_type = String, required = true,
             example = "sk-invite-7GmQ2xV9cL1pT8rW4zK6nB3hJ5yD0fA2sE7uR9iOqW1c2B")]
    pub token: Option<String>,
    /// The new member's name: 1 to 256 characters. Required unless the member has a first or
    /// last name (sent here or carried by the invite), from which it is then derived: `first
    /// last`, or the one given.
    #[schema(nullable = true, example = "Grace Hopper")]
    pub name: Option<String>,
    /// The new member's first name (an extension): 1 to 100 characters; in place of the
    /// invite's, if it has one.
    #[schema(nullable = true, max_length = 100)]
    pub first_name: Option<String>,
    /// The new member's last name (an extension): as `first_name`.
    #[schema(nullable = true, max_length = 100)]
    pub last_name: Option<String>,
    /// The new member's phone number (an extension), in E.164 form; in place of the invite's,
    /// if it has one.
    #[schema(nullable = true, example = "+436761234568")]
    pub phone_number: Option<String>,
}

impl RequestBody for AcceptInviteRequest {
    const FIELDS: &'static [&'static str] =
        &["token", "name", "first_name", "last_name", "phone_number"];

    fn expects(field: &str) -> String {
        match field {
            "token" => "the invite's accept token, a string".to_owned(),
            "first_name" | "last_name" => expects_person_name(),
            "phone_number" => expects_phone(),
            _ => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
        }
    }
}

fn expects_person_name() -> String {
    format!("a string of 1 to {MAX_PERSON_NAME_CHARS} characters")
}

fn expects_phone() -> String {
    "a phone number in E.164 form, a string such as \"+436761234568\"".to_owned()
}

/// The answer to an acceptance: the new member and their first key, whose secret `value` only
/// this response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptInviteResponse {
    /// The member the invite made.
    pub user: UserJson,
    /// The member's first key, holding every scope their role allows and expiring as the
    /// organisation's default key lifetime says (by default, never).
    pub api_key: AdminApiKeyCreateResponse,
}

/// Query parameters of the list (documentation only: the route parses the query string with
/// the shared parser).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct InviteListQuery {
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, default = 20)]
    limit: Option<String>,
    /// An invite id: the page starts right after this invite. Use the `last_id` of the
    /// previous page.
    after: Option<String>,
}

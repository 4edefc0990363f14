//! Wire types of the projects resource, following OpenAI's `organization.project` contract.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::MAX_NAME_CHARS;
use crate::extract::RequestBody;
use crate::models::project::Project;

/// Always `organization.project`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub enum ProjectObject {
    #[serde(rename = "organization.project")]
    Project,
}

/// Whether a project can be used and changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    /// In use: its keys work and it can be changed.
    Active,
    /// Archived for good: its keys are refused and it can only be read.
    Archived,
}

/// Where upstream keeps a project's data. This service stores the value it is given and shows
/// it back; it does not move data anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PublicProjectResidency)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
pub enum Residency {
    GLOBAL,
    US_STORAGE_PROCESSING,
    EU_STORAGE_PROCESSING,
    JP_STORAGE,
    KR_STORAGE,
    CA_STORAGE,
    SG_STORAGE,
    IN_STORAGE,
    AU_STORAGE,
    GB_STORAGE,
    AE_STORAGE,
    AE_STORAGE_PROCESSING,
}

impl Residency {
    const ALL: [Residency; 12] = [
        Residency::GLOBAL,
        Residency::US_STORAGE_PROCESSING,
        Residency::EU_STORAGE_PROCESSING,
        Residency::JP_STORAGE,
        Residency::KR_STORAGE,
        Residency::CA_STORAGE,
        Residency::SG_STORAGE,
        Residency::IN_STORAGE,
        Residency::AU_STORAGE,
        Residency::GB_STORAGE,
        Residency::AE_STORAGE,
        Residency::AE_STORAGE_PROCESSING,
    ];

    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Residency::GLOBAL => "GLOBAL",
            Residency::US_STORAGE_PROCESSING => "US_STORAGE_PROCESSING",
            Residency::EU_STORAGE_PROCESSING => "EU_STORAGE_PROCESSING",
            Residency::JP_STORAGE => "JP_STORAGE",
            Residency::KR_STORAGE => "KR_STORAGE",
            Residency::CA_STORAGE => "CA_STORAGE",
            Residency::SG_STORAGE => "SG_STORAGE",
            Residency::IN_STORAGE => "IN_STORAGE",
            Residency::AU_STORAGE => "AU_STORAGE",
            Residency::GB_STORAGE => "GB_STORAGE",
            Residency::AE_STORAGE => "AE_STORAGE",
            Residency::AE_STORAGE_PROCESSING => "AE_STORAGE_PROCESSING",
        }
    }

    /// The stored name back; anything unknown is not shown.
    fn from_db(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == stored)
    }
}

/// A project: a container for the keys applications use, with its members, service accounts
/// and per-model rate limits.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Project)]
pub struct ProjectJson {
    /// Identifier of the project, used in the URLs of this API.
    #[schema(example = "proj_4Hq8ZtW2nR6yK1mP9cV3bX7s")]
    pub id: String,
    pub object: ProjectObject,
    /// The project's name.
    #[schema(example = "Checkout service")]
    pub name: String,
    /// When the project was made, in Unix seconds.
    #[schema(example = 1763891200)]
    pub created_at: i64,
    /// When the project was archived, in Unix seconds; `null` while it is active.
    #[schema(required = true, example = json!(null))]
    pub archived_at: Option<i64>,
    /// `active` or `archived`.
    pub status: ProjectStatus,
    /// The external key id given to the project, if any (stored and shown, not used).
    #[schema(required = true)]
    pub external_key_id: Option<String>,
    /// The residency the project was made with; absent when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,
}

impl From<Project> for ProjectJson {
    fn from(project: Project) -> Self {
        Self {
            object: ProjectObject::Project,
            status: if project.is_archived() {
                ProjectStatus::Archived
            } else {
                ProjectStatus::Active
            },
            residency: project.residency.as_deref().and_then(Residency::from_db),
            id: project.id,
            name: project.name,
            created_at: project.created_at,
            archived_at: project.archived_at,
            external_key_id: project.external_key_id,
        }
    }
}

/// Body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectCreateRequest {
    /// The project's name: 1 to 256 characters, without control or invisible formatting
    /// characters. Leading and trailing spaces are removed.
    #[schema(value_type = String, required = true, example = "Checkout service")]
    pub name: Option<String>,
    /// Upstream's residency for the project, stored as given (`null` for none).
    #[schema(nullable = true)]
    pub residency: Option<Residency>,
    /// An external key id to keep with the project, 1 to 256 characters (`null` for none).
    #[schema(nullable = true)]
    pub external_key_id: Option<String>,
}

impl RequestBody for ProjectCreateRequest {
    const FIELDS: &'static [&'static str] = &["name", "residency", "external_key_id"];

    fn expects(field: &str) -> String {
        match field {
            "residency" => format!(
                "one of {} or null",
                Residency::ALL
                    .iter()
                    .map(|r| format!("`{}`", r.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "external_key_id" => format!("a string of 1 to {MAX_NAME_CHARS} characters, or null"),
            _ => format!("a string of 1 to {MAX_NAME_CHARS} characters"),
        }
    }
}

/// Body of a change: absent fields keep their value; at least one must be set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdateRequest {
    /// A new name: 1 to 256 characters (`null` keeps the name).
    #[schema(nullable = true)]
    pub name: Option<String>,
    /// A new external key id, 1 to 256 characters; `null` removes it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, nullable = true)]
    pub external_key_id: Option<Option<String>>,
}

impl RequestBody for ProjectUpdateRequest {
    const FIELDS: &'static [&'static str] = &["name", "external_key_id"];

    fn expects(field: &str) -> String {
        match field {
            "external_key_id" => format!("a string of 1 to {MAX_NAME_CHARS} characters, or null"),
            _ => format!("a string of 1 to {MAX_NAME_CHARS} characters, or null"),
        }
    }
}

/// Query parameters of the list (documentation only: the route parses the query string with
/// the shared parser).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ProjectListQuery {
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, default = 20)]
    limit: Option<String>,
    /// A project id: the page starts right after this project. Use the `last_id` of the
    /// previous page.
    after: Option<String>,
    /// `true` lists archived projects too; by default only active ones are listed.
    #[param(value_type = Option<bool>, default = false)]
    include_archived: Option<String>,
}

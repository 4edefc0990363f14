//! The `rate_limit_models` table (models first seen at forward auth) and the
//! `project_rate_limits` table (an operator's per-project, per-model overrides; a NULL column
//! keeps the model's default).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::domain::rate_limits::{Limits, ModelName, RateLimitModels};
use crate::schema::{project_rate_limits, rate_limit_models};

/// A stored override.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = project_rate_limits)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub struct RateLimitRow {
    pub project_id: String,
    pub model: String,
    pub max_requests_per_1_minute: Option<i64>,
    pub max_tokens_per_1_minute: Option<i64>,
    pub max_images_per_1_minute: Option<i64>,
    pub max_audio_megabytes_per_1_minute: Option<i64>,
    pub max_requests_per_1_day: Option<i64>,
    pub batch_1_day_max_input_tokens: Option<i64>,
    pub updated_at: i64,
}

impl RateLimitRow {
    /// The limits this override sets (`None` where it keeps the default).
    pub fn limits(&self) -> Limits {
        Limits {
            max_requests_per_1_minute: self.max_requests_per_1_minute,
            max_tokens_per_1_minute: self.max_tokens_per_1_minute,
            max_images_per_1_minute: self.max_images_per_1_minute,
            max_audio_megabytes_per_1_minute: self.max_audio_megabytes_per_1_minute,
            max_requests_per_1_day: self.max_requests_per_1_day,
            batch_1_day_max_input_tokens: self.batch_1_day_max_input_tokens,
        }
    }

    /// An override of `model` in `project_id` setting `limits`.
    pub fn new(project_id: &str, model: &ModelName, limits: Limits, updated_at: i64) -> Self {
        Self {
            project_id: project_id.to_owned(),
            model: model.as_str().to_owned(),
            max_requests_per_1_minute: limits.max_requests_per_1_minute,
            max_tokens_per_1_minute: limits.max_tokens_per_1_minute,
            max_images_per_1_minute: limits.max_images_per_1_minute,
            max_audio_megabytes_per_1_minute: limits.max_audio_megabytes_per_1_minute,
            max_requests_per_1_day: limits.max_requests_per_1_day,
            batch_1_day_max_input_tokens: limits.batch_1_day_max_input_tokens,
            updated_at,
        }
    }
}

/// Records `model` as seen at `now` unless it is known already; returns whether it was new.
pub fn note_model(conn: &mut DbConnection, model: &ModelName, now: i64) -> QueryResult<bool> {
    let row = (
        rate_limit_models::model.eq(model.as_str()),
        rate_limit_models::first_seen_at.eq(now),
    );
    let query = diesel::insert_into(rate_limit_models::table).values(row);
    let inserted = match conn {
        DbConnection::Pg(pg) => query.on_conflict_do_nothing().execute(pg)?,
        DbConnection::Sqlite(sqlite) => query.on_conflict_do_nothing().execute(sqlite)?,
    };
    Ok(inserted > 0)
}

/// Whether `model` has been seen.
pub fn seen(conn: &mut DbConnection, model: &ModelName) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        rate_limit_models::table.filter(rate_limit_models::model.eq(model.as_str())),
    ))
    .get_result(conn)
}

/// How many models have been seen.
pub fn seen_count(conn: &mut DbConnection) -> QueryResult<i64> {
    rate_limit_models::table.count().get_result(conn)
}

/// Every model seen, in name order.
pub fn seen_models(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    rate_limit_models::table
        .select(rate_limit_models::model)
        .order(rate_limit_models::model)
        .load(conn)
}

/// The overrides of `project_id`.
pub fn overrides_of(conn: &mut DbConnection, project_id: &str) -> QueryResult<Vec<RateLimitRow>> {
    project_rate_limits::table
        .filter(project_rate_limits::project_id.eq(project_id))
        .select(RateLimitRow::as_select())
        .load(conn)
}

/// The override of `model` in `project_id`, if any.
pub fn find_override(
    conn: &mut DbConnection,
    project_id: &str,
    model: &ModelName,
) -> QueryResult<Option<RateLimitRow>> {
    project_rate_limits::table
        .filter(project_rate_limits::project_id.eq(project_id))
        .filter(project_rate_limits::model.eq(model.as_str()))
        .select(RateLimitRow::as_select())
        .first(conn)
        .optional()
}

/// Writes an override, replacing the one of the same project and model.
pub fn save_override(conn: &mut DbConnection, row: &RateLimitRow) -> QueryResult<()> {
    let target = project_rate_limits::table
        .filter(project_rate_limits::project_id.eq(&row.project_id))
        .filter(project_rate_limits::model.eq(&row.model));
    let updated = diesel::update(target).set(row).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(project_rate_limits::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The limits `project_id` has for `model` now: each of its override's limits where set, else
/// the model's default from `defaults`. One statement; for forward auth, which holds the
/// defaults already.
pub fn effective(
    conn: &mut DbConnection,
    defaults: &RateLimitModels,
    project_id: &str,
    model: &ModelName,
) -> QueryResult<Limits> {
    let set = find_override(conn, project_id, model)?
        .map(|row| row.limits())
        .unwrap_or_default();
    Ok(set.over(defaults.defaults_for(model)))
}

//! (in progress: this service's projection of the registry)

use uuid::Uuid;

/// The person's facts (stub until the projection lands).
pub async fn facts(
    _pool: &sqlx::PgPool,
    _person: Uuid,
) -> Result<crate::domain::eligibility::PersonFacts, sqlx::Error> {
    Ok(crate::domain::eligibility::PersonFacts::default())
}

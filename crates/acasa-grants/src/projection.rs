//! (in progress: the read models)

use uuid::Uuid;

#[allow(dead_code)]
pub(crate) enum Trainee {
    Application(Uuid),
    Official(Uuid),
}

pub(crate) async fn held_seats(_pool: &sqlx::PgPool, _session: Uuid) -> Result<Vec<u32>, sqlx::Error> {
    Ok(Vec::new())
}

pub(crate) async fn held_training_places(_pool: &sqlx::PgPool, _call: Uuid) -> Result<Vec<u32>, sqlx::Error> {
    Ok(Vec::new())
}

pub(crate) async fn roster(_pool: &sqlx::PgPool, _session: Uuid) -> Result<Vec<(Trainee, u32)>, sqlx::Error> {
    Ok(Vec::new())
}

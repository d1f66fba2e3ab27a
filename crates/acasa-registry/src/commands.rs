//! The registry's commands: validate the request into domain values, let the
//! person decide (with the person's own codec: personal fields sealed under
//! their data key), and append through the command loop — one atomic batch
//! with the IDNP's claim and the request record.

use acasa_domain::{RejectionKind, Violations};
use acasa_eventstore::{CommandError, CommandMeta, Outcome, Step};
use acasa_proto::{
    Idempotent,
    registry::v1::{self as pb},
};
use acasa_runtime::{ApiError, Principal, request::meta_of as meta};
use chrono::{NaiveDate, Utc};
use tonic::{Request, Status};
use uuid::Uuid;

use crate::grpc::{RegistryService, WRITERS};
use crate::{
    codec::PersonCodec,
    domain::{Person, PersonCommand, Status as PersonState},
    validate::{self, fold},
};

/// How long a registration waits for the read model before it looks up
/// possible duplicates (it answers `duplicates_checked: false` past that).
const DUPLICATES_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl RegistryService {
    pub(crate) async fn codec(&self, id: Uuid) -> Result<PersonCodec, ApiError> {
        Ok(PersonCodec::new(id, self.keys.get(id).await?))
    }

    pub(crate) async fn load(&self, id: Uuid) -> Result<(Person, u64), ApiError> {
        let codec = self.codec(id).await?;
        Ok(self.repo.load_with(&id.to_string(), &codec).await?)
    }

    pub(crate) async fn run(
        &self,
        id: Uuid,
        command: PersonCommand,
        meta: &CommandMeta,
    ) -> Result<Outcome<Person>, ApiError> {
        let codec = self.codec(id).await?;
        Ok(self.repo.execute_with(&id.to_string(), &command, meta, &codec).await?)
    }

    /// The answer to a command whose IDNP another person holds: the holder,
    /// or the survivor it was merged into.
    pub(crate) async fn command_error(&self, e: CommandError<crate::domain::PersonError>) -> ApiError {
        let CommandError::Claimed { owner, .. } = e else { return e.into() };
        let Ok(holder) = Uuid::parse_str(&owner) else { return ApiError::Internal("a claim names a non-uuid".into()) };
        match self.load(holder).await {
            Ok((state, _)) => match state.status {
                PersonState::Merged(survivor) => ApiError::Duplicate {
                    message: format!(
                        "a person with this IDNP is already registered: {survivor} (merged from {holder})"
                    ),
                    existing_id: survivor.to_string(),
                },
                _ => ApiError::Duplicate {
                    message: format!("a person with this IDNP is already registered: {holder}"),
                    existing_id: holder.to_string(),
                },
            },
            Err(e) => e,
        }
    }

    pub(crate) async fn register(
        &self,
        principal: &Principal,
        req: &pb::RegisterPersonRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::RegisterPersonResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let details = validate::details(&mut v, "details", req.details.as_ref(), today());
        let contacts = validate::contacts(&mut v, "contacts", req.contacts.as_ref());
        let country = validate::country(&mut v, "country_of_residence", &req.country_of_residence);
        let categories = validate::categories(&mut v, "categories", &req.categories, true);
        let interests = validate::interests(&mut v, "interests", &req.interests);
        let (Some(meta), Some(details), Some(contacts), Some(country), Some(categories), Some(interests)) =
            (meta, details, contacts, country, categories, interests)
        else {
            return Err(v.into());
        };
        v.into_result()?;

        // A retry addresses the person its first attempt registered, and never
        // makes a new data key for an existing (perhaps erased) person.
        let (id, fresh) = self.repo.creation_id(&meta).await?;
        let codec =
            if fresh { PersonCodec::new(id, Some(self.keys.create(id).await?)) } else { self.codec(id).await? };
        let name_key = fold(&format!("{} {}", details.pb.family_name, details.pb.given_name));
        let birth_date = details.birth_date;
        let command = PersonCommand::Register { id, details, contacts, country, categories, interests };
        let step = Step { id: id.to_string(), command: &command, codec: &codec, new: fresh };
        let outcome = match self.repo.execute_step(step, &meta).await {
            Ok(o) => o,
            Err(e) => return Err(self.command_error(e).await),
        };
        let id = Uuid::parse_str(&outcome.id).unwrap_or(id);
        if outcome.replayed {
            tracing::info!(person_id = %id, position = outcome.position, "registration replayed for a retried request id");
        } else {
            tracing::info!(person_id = %id, position = outcome.position, "person registered");
        }
        // Others registered with these names and birth date. The registration
        // marked them (`SIMILAR_MARK`): the last one before it is named by the
        // mark; every earlier one was stored before that mark, so the read
        // model holds them once it reaches the mark's position — usually at
        // once (waited for at most DUPLICATES_WAIT). A replay waits for its
        // own position instead.
        let mark = outcome.marks.iter().find(|m| m.kind == crate::domain::SIMILAR_MARK);
        let wait_to = match mark {
            Some(m) => m.sequence,
            None if outcome.replayed => outcome.position,
            None => 0,
        };
        let until = deadline.min(tokio::time::Instant::now() + DUPLICATES_WAIT);
        let stream = self.repo.store().stream_name();
        let duplicates_checked = wait_to == 0
            || match self.positions.wait_for(crate::PROJECTION, stream, wait_to, until).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(person_id = %id, error = %e, "duplicates looked up on a lagging read model");
                    false
                }
            };
        let previous = mark.and_then(|m| m.previous.as_deref()).and_then(|p| Uuid::parse_str(p).ok());
        let rows = sqlx::query_as::<_, (Uuid, bool)>(
            "SELECT person_id, status = 'active' AND name_key = $1 AND birth_date = $2 FROM registry.people \
             WHERE (status = 'active' AND name_key = $1 AND birth_date = $2 AND person_id <> $3) OR person_id = $4 \
             ORDER BY person_id LIMIT 21",
        )
        .bind(&name_key)
        .bind(birth_date)
        .bind(id)
        .bind(previous)
        .fetch_all(&self.pool)
        .await?;
        let mut possible_duplicates: Vec<Uuid> = rows.iter().filter(|(_, similar)| *similar).map(|(p, _)| *p).collect();
        // The previous mark's person, not yet in the read model: registered
        // moments ago (a person since changed, merged or erased is in it).
        if let Some(p) = previous.filter(|p| *p != id && !rows.iter().any(|(r, _)| r == p)) {
            possible_duplicates.push(p);
            possible_duplicates.sort();
        }
        possible_duplicates.truncate(20);
        Ok(pb::RegisterPersonResponse {
            person_id: id.to_string(),
            position: outcome.position,
            possible_duplicates: possible_duplicates.iter().map(Uuid::to_string).collect(),
            duplicates_checked,
        })
    }

    pub(crate) async fn update_details(
        &self,
        principal: &Principal,
        req: &pb::UpdatePersonDetailsRequest,
    ) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let id = validate::id(&mut v, "person_id", &req.person_id);
        let details = validate::details(&mut v, "details", req.details.as_ref(), today());
        let country = validate::country(&mut v, "country_of_residence", &req.country_of_residence);
        let (Some(meta), Some(id), Some(details), Some(country)) = (meta, id, details, country) else {
            return Err(v.into());
        };
        v.into_result()?;
        let command = PersonCommand::UpdateDetails { details, country };
        let codec = self.codec(id).await?;
        match self.repo.execute_with(&id.to_string(), &command, &meta, &codec).await {
            Ok(outcome) => Ok(outcome.position),
            Err(e) => Err(self.command_error(e).await),
        }
    }

    /// A command on one person from a request with `request_id` and
    /// `person_id`: validate both and what `build` reads, run it, answer the position.
    pub(crate) async fn person_command<R: Idempotent>(
        &self,
        request: &Request<R>,
        person_id: impl Fn(&R) -> &str,
        build: impl FnOnce(&R, &mut Violations) -> Option<PersonCommand>,
    ) -> Result<u64, Status> {
        let principal = Principal::authorized(request, WRITERS)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let id = validate::id(&mut v, "person_id", person_id(req));
        let command = build(req, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else { return Err(ApiError::from(v).into()) };
        v.into_result().map_err(ApiError::from)?;
        Ok(self.run(id, command, &meta).await?.position)
    }

    pub(crate) async fn merge(&self, principal: &Principal, req: &pb::MergePeopleRequest) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let survivor = validate::id(&mut v, "survivor_person_id", &req.survivor_person_id);
        let merged = validate::id(&mut v, "merged_person_id", &req.merged_person_id);
        if survivor.is_some() && survivor == merged {
            v.add("merged_person_id", "must differ from survivor_person_id");
        }
        let (Some(meta), Some(survivor), Some(merged)) = (meta, survivor, merged) else { return Err(v.into()) };
        v.into_result()?;
        let (s, version) = self.load(survivor).await?;
        if version == 0 {
            return Err(ApiError::NotFound(format!("no person {survivor}")));
        }
        match s.status {
            PersonState::Active => {}
            PersonState::Merged(into) => {
                return Err(ApiError::Rejected {
                    kind: RejectionKind::FailedPrecondition,
                    message: format!("the survivor was itself merged into {into}"),
                    rule: None,
                });
            }
            PersonState::Erased => {
                return Err(ApiError::Rejected {
                    kind: RejectionKind::FailedPrecondition,
                    message: "the survivor was erased".into(),
                    rule: None,
                });
            }
        }
        // Both sides in one atomic batch: never a merged record whose survivor
        // did not absorb it.
        let (m, _) = self.load(merged).await?;
        let mark = PersonCommand::MergeInto(survivor);
        let absorb = PersonCommand::Absorb { merged, categories: m.categories };
        let (merged_codec, survivor_codec) = (self.codec(merged).await?, self.codec(survivor).await?);
        let steps = [
            Step { id: merged.to_string(), command: &mark, codec: &merged_codec, new: false },
            Step { id: survivor.to_string(), command: &absorb, codec: &survivor_codec, new: false },
        ];
        let outcomes = self.repo.execute_all(&steps, &meta).await?;
        let position = outcomes.iter().map(|o| o.position).max().unwrap_or(0);
        tracing::info!(%survivor, %merged, position, "people merged");
        Ok(position)
    }

    /// Erases a person and every record merged into them (transitively): the
    /// same human, in one atomic batch. A merged record is not erased on its
    /// own: the request names the survivor.
    pub(crate) async fn erase(&self, principal: &Principal, req: &pb::ErasePersonRequest) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let id = validate::id(&mut v, "person_id", &req.person_id);
        let (Some(meta), Some(id)) = (meta, id) else { return Err(v.into()) };
        let at = Utc::now();
        let mut attempts = 0;
        let (outcomes, group) = loop {
            attempts += 1;
            let (root, version) = self.load(id).await?;
            if version == 0 {
                return Err(ApiError::NotFound(format!("no person {id}")));
            }
            if let PersonState::Merged(survivor) = root.status {
                return Err(ApiError::Rejected {
                    kind: RejectionKind::FailedPrecondition,
                    message: format!(
                        "the record was merged into {survivor}; erase {survivor}, which erases every record merged into it"
                    ),
                    rule: None,
                });
            }
            let group = self.merged_into(&root).await?;
            // Each record's command names the records merged into it, so an
            // erasure racing a merge is refused rather than missing one.
            // Every record not erased yet (a survivor erased before erasure
            // reached merged records gets them finished); none left: the root
            // alone, which answers a replay or "already erased".
            let erase = |state: &Person| PersonCommand::Erase { at, with: state.absorbed.clone() };
            let mut members: Vec<(Uuid, PersonCommand)> = std::iter::once((id, &root))
                .chain(group.iter().map(|(m, s)| (*m, s)))
                .filter(|(_, state)| state.status != PersonState::Erased)
                .map(|(member, state)| (member, erase(state)))
                .collect();
            if members.is_empty() {
                members.push((id, erase(&root)));
            }
            let mut codecs = Vec::with_capacity(members.len());
            for (member, _) in &members {
                codecs.push(self.codec(*member).await?);
            }
            let steps: Vec<Step<'_, Person>> = members
                .iter()
                .zip(&codecs)
                .map(|((member, command), codec)| Step { id: member.to_string(), command, codec, new: false })
                .collect();
            match self.repo.execute_all(&steps, &meta).await {
                Ok(outcomes) => break (outcomes, group),
                Err(CommandError::Rejected(crate::domain::PersonError::MergedMeanwhile)) if attempts < 5 => {}
                Err(e) => return Err(e.into()),
            }
        };
        // Also on a replayed erasure: an earlier attempt may have stopped
        // before this (the projection destroys the keys too, as a backstop).
        for member in std::iter::once(id).chain(group.iter().map(|(m, _)| *m)) {
            self.keys.destroy(member).await?;
            self.repo.evict(&member.to_string());
        }
        let position = outcomes.iter().map(|o| o.position).max().unwrap_or(0);
        tracing::info!(person_id = %id, merged_records = group.len(), position, "person erased");
        Ok(position)
    }

    /// The records merged into `root`, transitively, with their states.
    async fn merged_into(&self, root: &Person) -> Result<Vec<(Uuid, Person)>, ApiError> {
        let mut out: Vec<(Uuid, Person)> = Vec::new();
        let mut queue: Vec<Uuid> = root.absorbed.iter().copied().collect();
        while let Some(m) = queue.pop() {
            if out.iter().any(|(seen, _)| *seen == m) || Some(m) == root.id {
                continue;
            }
            let (state, _) = self.load(m).await?;
            queue.extend(state.absorbed.iter().copied());
            out.push((m, state));
        }
        Ok(out)
    }
}

//! The gRPC handlers of `acasa.registry.v1.RegistryService`: validate, run the
//! command loop with the person's codec, or read the read model.

use std::collections::BTreeSet;

use acasa_domain::{RejectionKind, Violations};
use acasa_eventstore::{CommandError, CommandMeta, Outcome, Repository, Step};
use acasa_projection::Positions;
use acasa_proto::{
    Message as _,
    registry::v1::{self as pb, registry_service_server::RegistryServiceServer},
};
use acasa_runtime::{ApiError, Authenticator, Principal, Role, request, request::meta_of as meta};
use acasa_vault::{KeyCache, Vault};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder, Row as _, postgres::PgRow};
use tonic::{Request, Response, Status, service::Routes};
use uuid::Uuid;

use crate::{
    codec::{PersonCodec, timestamp},
    domain::{Category, Interest, Person, PersonCommand, Status as PersonState, proto_date},
    validate::{self, fold},
};

/// Most results per page.
const PAGE_MAX: i32 = 200;
/// Results per page when the client does not say.
const PAGE_DEFAULT: i32 = 50;

const WRITERS: &[Role] = &[Role::Admin, Role::Caseworker];
const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer];
const ADMINS: &[Role] = &[Role::Admin];

/// How long an unwrapped data key stays in memory (see [`KeyCache`]).
const KEY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The service's dependencies.
#[derive(Clone)]
pub struct RegistryService {
    repo: Repository<Person>,
    vault: Vault,
    keys: KeyCache,
    positions: Positions,
    pool: PgPool,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService").field("repo", &self.repo).field("vault", &self.vault).finish()
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl RegistryService {
    /// The service over its repository, vault and read model.
    pub fn new(repo: Repository<Person>, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        let keys = KeyCache::new(10_000, KEY_TTL);
        Self { repo, vault, keys, positions, pool }
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(RegistryServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.registry.v1.RegistryService";

    async fn codec(&self, id: Uuid) -> Result<PersonCodec, ApiError> {
        if let Some(key) = self.keys.get(id) {
            return Ok(PersonCodec::new(id, Some(key)));
        }
        let key = self.vault.key(id).await?;
        if let Some(key) = &key {
            self.keys.put(id, key.clone());
        }
        Ok(PersonCodec::new(id, key))
    }

    async fn load(&self, id: Uuid) -> Result<(Person, u64), ApiError> {
        let codec = self.codec(id).await?;
        Ok(self.repo.load_with(&id.to_string(), &codec).await?)
    }

    async fn run(&self, id: Uuid, command: PersonCommand, meta: &CommandMeta) -> Result<Outcome<Person>, ApiError> {
        let codec = self.codec(id).await?;
        Ok(self.repo.execute_with(&id.to_string(), &command, meta, &codec).await?)
    }

    /// The answer to a command whose IDNP another person holds: the holder,
    /// or the survivor it was merged into.
    async fn command_error(&self, e: CommandError<crate::domain::PersonError>) -> ApiError {
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

    async fn register(
        &self,
        principal: &Principal,
        req: &pb::RegisterPersonRequest,
    ) -> Result<pb::RegisterPersonResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
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
        let (id, fresh) = match self.repo.created_by(&meta).await? {
            Some(id) => (
                Uuid::parse_str(&id).map_err(|_| ApiError::Internal("a request record names a non-uuid".into()))?,
                false,
            ),
            None => (Uuid::now_v7(), true),
        };
        let codec = if fresh {
            let key = self.vault.key_for_new(id).await?;
            self.keys.put(id, key.clone());
            PersonCodec::new(id, Some(key))
        } else {
            self.codec(id).await?
        };
        let name_key = fold(&format!("{} {}", details.pb.family_name, details.pb.given_name));
        let birth_date = details.birth_date;
        let command = PersonCommand::Register { id, details, contacts, country, categories, interests };
        let execute = async {
            if fresh {
                self.repo.execute_new_with(&id.to_string(), &command, &meta, &codec).await
            } else {
                self.repo.execute_with(&id.to_string(), &command, &meta, &codec).await
            }
        };
        // Others already registered with these names and birth date (the read
        // model's view; the projection flags the rest), looked up meanwhile.
        let duplicates = async {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT person_id FROM registry.people \
                 WHERE status = 'active' AND name_key = $1 AND birth_date = $2 AND person_id <> $3 \
                 ORDER BY person_id LIMIT 20",
            )
            .bind(&name_key)
            .bind(birth_date)
            .bind(id)
            .fetch_all(&self.pool)
            .await
        };
        let (result, possible_duplicates) = tokio::join!(execute, duplicates);
        let outcome = match result {
            Ok(o) => o,
            Err(e) => return Err(self.command_error(e).await),
        };
        let id = Uuid::parse_str(&outcome.id).unwrap_or(id);
        if outcome.replayed {
            tracing::info!(person_id = %id, position = outcome.position, "registration replayed for a retried request id");
        } else {
            tracing::info!(person_id = %id, position = outcome.position, "person registered");
        }
        let possible_duplicates = possible_duplicates?;
        Ok(pb::RegisterPersonResponse {
            person_id: id.to_string(),
            position: outcome.position,
            possible_duplicates: possible_duplicates.iter().map(Uuid::to_string).collect(),
        })
    }

    async fn update_details(
        &self,
        principal: &Principal,
        req: &pb::UpdatePersonDetailsRequest,
    ) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
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
    async fn person_command<R: PersonRequest>(
        &self,
        request: &Request<R>,
        build: impl FnOnce(&R, &mut Violations) -> Option<PersonCommand>,
    ) -> Result<u64, Status> {
        let principal = Principal::authorized(request, WRITERS)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req.request_id(), req, R::clear_request_id);
        let id = validate::id(&mut v, "person_id", req.person_id());
        let command = build(req, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else { return Err(ApiError::from(v).into()) };
        v.into_result().map_err(ApiError::from)?;
        Ok(self.run(id, command, &meta).await?.position)
    }

    async fn merge(&self, principal: &Principal, req: &pb::MergePeopleRequest) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
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
                });
            }
            PersonState::Erased => {
                return Err(ApiError::Rejected {
                    kind: RejectionKind::FailedPrecondition,
                    message: "the survivor was erased".into(),
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
        let outcome = Outcome::<Person> { id: survivor.to_string(), position, events: Vec::new(), replayed: false };
        tracing::info!(%survivor, %merged, position = outcome.position, "people merged");
        Ok(outcome.position)
    }

    async fn erase(&self, principal: &Principal, req: &pb::ErasePersonRequest) -> Result<u64, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let id = validate::id(&mut v, "person_id", &req.person_id);
        let (Some(meta), Some(id)) = (meta, id) else { return Err(v.into()) };
        // The erasure frees the IDNP in the same batch (see `Person::claims`).
        let outcome = self.run(id, PersonCommand::Erase { at: Utc::now() }, &meta).await?;
        // Also on a replayed erasure: an earlier attempt may have stopped before this.
        self.keys.forget(id);
        self.vault.destroy(id).await?;
        self.keys.forget(id);
        self.repo.evict(&id.to_string());
        tracing::info!(person_id = %id, position = outcome.position, "person erased");
        Ok(outcome.position)
    }

    async fn at_position(&self, min: u64, deadline: tokio::time::Instant) -> Result<u64, ApiError> {
        Ok(if min > 0 {
            self.positions.wait_for(crate::PROJECTION, min, deadline).await?
        } else {
            self.positions.current(crate::PROJECTION).await?
        })
    }

    async fn get(
        &self,
        req: &pb::GetPersonRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::GetPersonResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "person_id", &req.person_id);
        let Some(id) = id else { return Err(v.into()) };
        let position = self.at_position(req.min_position, deadline).await?;
        // One round trip: the row, its consents, history and open flags.
        let row = sqlx::query(
            "SELECT p.*, \
               (SELECT coalesce(json_agg(json_build_array(c.purpose, c.partner_id, c.given, c.channel, \
                   (extract(epoch FROM c.changed_at) * 1000000)::int8) ORDER BY c.purpose, c.partner_id), '[]') \
                FROM registry.consents c WHERE c.person_id = p.person_id)::text AS consents_json, \
               (SELECT coalesce(json_agg(json_build_array(h.purpose, h.partner_id, h.given, h.channel, \
                   (extract(epoch FROM h.at) * 1000000)::int8, h.recorded_by) ORDER BY h.position, h.seq), '[]') \
                FROM registry.consent_history h WHERE h.person_id = p.person_id)::text AS history_json, \
               ARRAY(SELECT CASE WHEN f.person_id = p.person_id THEN f.other_id ELSE f.person_id END \
                FROM registry.duplicate_flags f \
                WHERE (f.person_id = p.person_id OR f.other_id = p.person_id) AND f.status = 'open' ORDER BY 1) \
                 AS duplicates \
             FROM registry.people p WHERE p.person_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
        let mut person = person_of(&row)?;
        let consents: Vec<(i32, Uuid, bool, i32, i64)> = json_column(&row, "consents_json")?;
        person.consents = consents
            .into_iter()
            .map(|(purpose, partner, given, channel, micros)| pb::Consent {
                purpose,
                partner_id: if partner.is_nil() { String::new() } else { partner.to_string() },
                given,
                channel,
                changed_at: Some(micros_timestamp(micros)),
            })
            .collect();
        let history: Vec<(i32, Option<Uuid>, bool, i32, i64, String)> = json_column(&row, "history_json")?;
        person.consent_history = history
            .into_iter()
            .map(|(purpose, partner, given, channel, micros, recorded_by)| pb::ConsentChange {
                purpose,
                partner_id: partner.map(|p| p.to_string()).unwrap_or_default(),
                given,
                channel,
                at: Some(micros_timestamp(micros)),
                recorded_by,
            })
            .collect();
        let duplicates: Vec<Uuid> = row.try_get("duplicates")?;
        person.possible_duplicates = duplicates.iter().map(Uuid::to_string).collect();
        Ok(pb::GetPersonResponse { person: Some(person), position })
    }

    async fn search(
        &self,
        req: &pb::SearchPeopleRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::SearchPeopleResponse, ApiError> {
        let mut v = Violations::new();
        let categories = validate::categories(&mut v, "categories", &req.categories, false);
        let country = (!req.country.is_empty()).then(|| validate::country(&mut v, "country", &req.country));
        let name = fold(req.name.trim());
        if !req.name.is_empty() && name.chars().count() < 2 {
            v.add("name", "must be at least 2 characters");
        }
        let mut skills = Vec::new();
        if v.check("skills", acasa_domain::formats::list_len(req.skills.len(), validate::SKILLS_MAX)).is_some() {
            skills = req.skills.iter().map(|s| fold(s.trim())).filter(|s| !s.is_empty()).collect();
        }
        for (field, value) in [("district", &req.district), ("field", &req.field), ("profession", &req.profession)] {
            if value.chars().count() > validate::LONG_TEXT_MAX {
                v.add(field, format!("must be at most {} characters", validate::LONG_TEXT_MAX));
            }
        }
        let page = page(&mut v, req.page_size, &req.page_token);
        let (Some(categories), Some(page)) = (categories, page) else { return Err(v.into()) };
        v.into_result()?;
        let position = self.at_position(req.min_position, deadline).await?;
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        if !req.include_inactive {
            q.push(" AND status = 'active'");
        }
        if !categories.is_empty() {
            q.push(" AND categories && ").push_bind(categories.iter().map(|c| *c as i32).collect::<Vec<_>>());
        }
        if let Some(Some(country)) = country {
            q.push(" AND country = ").push_bind(country);
        }
        if !req.district.trim().is_empty() {
            q.push(" AND district_key = ").push_bind(fold(req.district.trim()));
        }
        push_like(&mut q, "field_key", &req.field);
        push_like(&mut q, "profession_key", &req.profession);
        push_like(&mut q, "name_key", &req.name);
        if !skills.is_empty() {
            q.push(" AND skills_key @> ").push_bind(skills);
        }
        let (people, next_page_token) = self.page_of(q, page).await?;
        Ok(pb::SearchPeopleResponse { people, next_page_token, position })
    }

    async fn candidates(
        &self,
        req: &pb::ListCandidatesRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::ListCandidatesResponse, ApiError> {
        let mut v = Violations::new();
        let wanted = match pb::CandidatePurpose::try_from(req.purpose) {
            Ok(pb::CandidatePurpose::ScientificAssignment) => {
                Some((vec![Category::DiasporaScientist], Interest::ScientificAssignment))
            }
            Ok(pb::CandidatePurpose::Placement) => Some((vec![Category::OverseasGraduate], Interest::Placement)),
            Ok(pb::CandidatePurpose::Entrepreneurship) => Some((
                vec![Category::YouthEntrepreneur, Category::WomanEntrepreneur],
                Interest::EntrepreneurshipSupport,
            )),
            Ok(pb::CandidatePurpose::Unspecified) => {
                v.add("purpose", "is required");
                None
            }
            Err(_) => {
                v.add("purpose", "is not a known purpose");
                None
            }
        };
        let country = (!req.country.is_empty()).then(|| validate::country(&mut v, "country", &req.country));
        let page = page(&mut v, req.page_size, &req.page_token);
        let (Some((categories, interest)), Some(page)) = (wanted, page) else { return Err(v.into()) };
        v.into_result()?;
        let position = self.at_position(req.min_position, deadline).await?;
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        q.push(" AND status = 'active' AND programme_consent AND categories && ")
            .push_bind(categories.iter().map(|c| *c as i32).collect::<Vec<_>>())
            .push(" AND interests @> ")
            .push_bind(vec![interest as i32]);
        if let Some(Some(country)) = country {
            q.push(" AND country = ").push_bind(country);
        }
        push_like(&mut q, "field_key", &req.field);
        push_like(&mut q, "profession_key", &req.profession);
        let (people, next_page_token) = self.page_of(q, page).await?;
        Ok(pb::ListCandidatesResponse { people, next_page_token, position })
    }

    async fn page_of(
        &self,
        mut q: QueryBuilder<Postgres>,
        page: Page,
    ) -> Result<(Vec<pb::PersonSummary>, String), ApiError> {
        if let Some(after) = page.after {
            q.push(" AND person_id > ").push_bind(after);
        }
        q.push(" ORDER BY person_id LIMIT ").push_bind(i64::from(page.size) + 1);
        // Not a prepared statement: a generic plan cannot use the trigram
        // indexes for `LIKE $n` and would scan the table for rare names.
        let rows = q.build().persistent(false).fetch_all(&self.pool).await?;
        let mut people = rows.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
        let more = people.len() > usize::try_from(page.size).unwrap_or(0);
        people.truncate(usize::try_from(page.size).unwrap_or(0));
        let token = match people.last() {
            Some(last) if more => token_for(&last.person_id),
            _ => String::new(),
        };
        Ok((people, token))
    }

    async fn flags(
        &self,
        req: &pb::ListDuplicateFlagsRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::ListDuplicateFlagsResponse, ApiError> {
        let mut v = Violations::new();
        let page = page(&mut v, req.page_size, &req.page_token);
        let Some(page) = page else { return Err(v.into()) };
        let position = self.at_position(req.min_position, deadline).await?;
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT person_id, other_id, raised_at FROM registry.duplicate_flags \
             WHERE status = 'open' AND (person_id, other_id) > ($1, $2) ORDER BY person_id, other_id LIMIT $3",
        )
        .bind(page.after.unwrap_or_default())
        .bind(page.after_other.unwrap_or_default())
        .bind(i64::from(page.size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let size = usize::try_from(page.size).unwrap_or(0);
        let more = rows.len() > size;
        let rows = &rows[..rows.len().min(size)];
        let ids: Vec<Uuid> = rows.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        q.push(" AND person_id = ANY(").push_bind(ids).push(")");
        let summaries: Vec<pb::PersonSummary> =
            q.build().fetch_all(&self.pool).await?.iter().map(summary_of).collect::<Result<_, _>>()?;
        let find = |id: &Uuid| summaries.iter().find(|s| s.person_id == id.to_string()).cloned();
        let flags = rows
            .iter()
            .map(|(a, b, at)| pb::DuplicateFlag { person: find(a), other: find(b), raised_at: Some(timestamp(*at)) })
            .collect();
        let next_page_token = match rows.last() {
            Some((a, b, _)) if more => token_for(&format!("{a}/{b}")),
            _ => String::new(),
        };
        Ok(pb::ListDuplicateFlagsResponse { flags, next_page_token, position })
    }

    async fn counts(
        &self,
        req: &pb::CountPeopleRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::CountPeopleResponse, ApiError> {
        let position = self.at_position(req.min_position, deadline).await?;
        let rows: Vec<(i32, String, i64)> = sqlx::query_as(
            "SELECT c, country, count(*) FROM registry.people, unnest(categories) AS c \
             WHERE status <> 'merged' GROUP BY c, country ORDER BY c, country",
        )
        .fetch_all(&self.pool)
        .await?;
        let counts =
            rows.into_iter().map(|(category, country, people)| pb::PeopleCount { category, country, people }).collect();
        Ok(pb::CountPeopleResponse { counts, position })
    }
}

/// A validated page request.
struct Page {
    size: i32,
    after: Option<Uuid>,
    /// Flags only: the second id of the last pair seen.
    after_other: Option<Uuid>,
}

const TOKEN_PREFIX: &str = "p1:";

fn token_for(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{id}"))
}

fn page(v: &mut Violations, size: i32, token: &str) -> Option<Page> {
    let size = match size {
        0 => PAGE_DEFAULT,
        s if (1..=PAGE_MAX).contains(&s) => s,
        _ => {
            v.add("page_size", format!("must be between 1 and {PAGE_MAX} (0 for {PAGE_DEFAULT})"));
            return None;
        }
    };
    if token.is_empty() {
        return Some(Page { size, after: None, after_other: None });
    }
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(TOKEN_PREFIX).map(str::to_owned));
    let parsed = decoded.and_then(|s| match s.split_once('/') {
        None => Some((Uuid::parse_str(&s).ok()?, None)),
        Some((a, b)) => Some((Uuid::parse_str(a).ok()?, Some(Uuid::parse_str(b).ok()?))),
    });
    match parsed {
        Some((after, after_other)) => Some(Page { size, after: Some(after), after_other }),
        None => {
            v.add("page_token", "is not a token from a previous page");
            None
        }
    }
}

/// `AND <column> LIKE %folded%` when `value` is given (LIKE wildcards in it are literal).
fn push_like(q: &mut QueryBuilder<Postgres>, column: &str, value: &str) {
    let value = fold(value.trim());
    if value.is_empty() {
        return;
    }
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    q.push(format_args!(" AND {column} LIKE ")).push_bind(format!("%{escaped}%"));
}

const SUMMARY_SELECT: &str = "SELECT person_id, status, merged_into, categories, country, given_name, family_name, \
     home_district, profession, scientific_field FROM registry.people WHERE true";

fn json_column<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T, ApiError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| ApiError::Internal(format!("read model {column}: {e}")))
}

fn micros_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

fn status_of(s: &str) -> pb::PersonStatus {
    match s {
        "active" => pb::PersonStatus::Active,
        "merged" => pb::PersonStatus::Merged,
        "erased" => pb::PersonStatus::Erased,
        _ => pb::PersonStatus::Unspecified,
    }
}

fn text(row: &PgRow, column: &str) -> Result<String, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(column)?.unwrap_or_default())
}

fn summary_of(row: &PgRow) -> Result<pb::PersonSummary, sqlx::Error> {
    let id: Uuid = row.try_get("person_id")?;
    let merged_into: Option<Uuid> = row.try_get("merged_into")?;
    Ok(pb::PersonSummary {
        person_id: id.to_string(),
        status: status_of(row.try_get("status")?) as i32,
        given_name: text(row, "given_name")?,
        family_name: text(row, "family_name")?,
        categories: row.try_get("categories")?,
        country_of_residence: row.try_get("country")?,
        home_district: text(row, "home_district")?,
        profession: text(row, "profession")?,
        scientific_field: text(row, "scientific_field")?,
        merged_into: merged_into.map(|m| m.to_string()).unwrap_or_default(),
    })
}

/// Education entries stored length-delimited in one column.
fn education_of(mut bytes: &[u8]) -> Vec<pb::Education> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match pb::Education::decode_length_delimited(&mut bytes) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
    }
    out
}

fn person_of(row: &PgRow) -> Result<pb::Person, sqlx::Error> {
    let id: Uuid = row.try_get("person_id")?;
    let merged_into: Option<Uuid> = row.try_get("merged_into")?;
    let given_name: Option<String> = row.try_get("given_name")?;
    let details = match given_name {
        None => None,
        Some(given_name) => {
            let education: Vec<u8> = row.try_get::<Option<Vec<u8>>, _>("education")?.unwrap_or_default();
            Some(pb::PersonDetails {
                given_name,
                family_name: text(row, "family_name")?,
                birth_date: row.try_get::<Option<NaiveDate>, _>("birth_date")?.map(proto_date),
                sex: row.try_get::<Option<i32>, _>("sex")?.unwrap_or_default(),
                idnp: text(row, "idnp")?,
                home_district: text(row, "home_district")?,
                home_locality: text(row, "home_locality")?,
                languages: row.try_get::<Option<Vec<String>>, _>("languages")?.unwrap_or_default(),
                education: education_of(&education),
                profession: text(row, "profession")?,
                scientific_field: text(row, "scientific_field")?,
                skills: row.try_get::<Option<Vec<String>>, _>("skills")?.unwrap_or_default(),
            })
        }
    };
    let contacts = details.as_ref().map(|_| -> Result<pb::Contacts, sqlx::Error> {
        Ok(pb::Contacts { email: text(row, "email")?, phone: text(row, "phone")? })
    });
    let returned: bool = row.try_get("returned")?;
    let return_date: Option<NaiveDate> = row.try_get("return_date")?;
    let return_details = return_date.map(|d| -> Result<pb::ReturnDetails, sqlx::Error> {
        Ok(pb::ReturnDetails {
            return_date: Some(proto_date(d)),
            district: text(row, "return_district")?,
            locality: text(row, "return_locality")?,
        })
    });
    Ok(pb::Person {
        person_id: id.to_string(),
        status: status_of(row.try_get("status")?) as i32,
        merged_into: merged_into.map(|m| m.to_string()).unwrap_or_default(),
        categories: row.try_get("categories")?,
        country_of_residence: row.try_get("country")?,
        details,
        contacts: contacts.transpose()?,
        return_details: return_details.transpose()?,
        returned,
        interests: row.try_get("interests")?,
        consents: Vec::new(),
        consent_history: Vec::new(),
        possible_duplicates: Vec::new(),
        registered_at: Some(timestamp(row.try_get("registered_at")?)),
        updated_at: Some(timestamp(row.try_get("updated_at")?)),
        version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0),
    })
}

/// A request addressing one person with an idempotency key.
trait PersonRequest: acasa_proto::Message + acasa_proto::Name + Clone {
    fn request_id(&self) -> &str;
    fn person_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! person_requests {
    ($($t:ty),* $(,)?) => {$(
        impl PersonRequest for $t {
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn person_id(&self) -> &str {
                &self.person_id
            }
            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        }
    )*};
}

person_requests!(
    pb::UpdateContactsRequest,
    pb::RecordReturnRequest,
    pb::AddCategoryRequest,
    pb::RemoveCategoryRequest,
    pb::GiveConsentRequest,
    pb::WithdrawConsentRequest,
    pb::RecordInterestsRequest,
    pb::DismissDuplicateRequest,
);

#[tonic::async_trait]
impl pb::registry_service_server::RegistryService for RegistryService {
    async fn register_person(
        &self,
        request: Request<pb::RegisterPersonRequest>,
    ) -> Result<Response<pb::RegisterPersonResponse>, Status> {
        let principal = Principal::authorized(&request, WRITERS)?;
        Ok(Response::new(self.register(principal, request.get_ref()).await?))
    }

    async fn update_person_details(
        &self,
        request: Request<pb::UpdatePersonDetailsRequest>,
    ) -> Result<Response<pb::UpdatePersonDetailsResponse>, Status> {
        let principal = Principal::authorized(&request, WRITERS)?;
        let position = self.update_details(principal, request.get_ref()).await?;
        Ok(Response::new(pb::UpdatePersonDetailsResponse { position }))
    }

    async fn update_contacts(
        &self,
        request: Request<pb::UpdateContactsRequest>,
    ) -> Result<Response<pb::UpdateContactsResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let contacts = validate::contacts(v, "contacts", req.contacts.as_ref());
                contacts.map(PersonCommand::UpdateContacts)
            })
            .await?;
        Ok(Response::new(pb::UpdateContactsResponse { position }))
    }

    async fn record_return(
        &self,
        request: Request<pb::RecordReturnRequest>,
    ) -> Result<Response<pb::RecordReturnResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let ret = validate::return_details(v, "return_details", req.return_details.as_ref(), today());
                ret.map(PersonCommand::RecordReturn)
            })
            .await?;
        Ok(Response::new(pb::RecordReturnResponse { position }))
    }

    async fn add_category(
        &self,
        request: Request<pb::AddCategoryRequest>,
    ) -> Result<Response<pb::AddCategoryResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let c = validate::category(v, "category", req.category);
                c.map(PersonCommand::AddCategory)
            })
            .await?;
        Ok(Response::new(pb::AddCategoryResponse { position }))
    }

    async fn remove_category(
        &self,
        request: Request<pb::RemoveCategoryRequest>,
    ) -> Result<Response<pb::RemoveCategoryResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let c = validate::category(v, "category", req.category);
                c.map(PersonCommand::RemoveCategory)
            })
            .await?;
        Ok(Response::new(pb::RemoveCategoryResponse { position }))
    }

    async fn give_consent(
        &self,
        request: Request<pb::GiveConsentRequest>,
    ) -> Result<Response<pb::GiveConsentResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let consent = validate::consent(v, req.purpose, &req.partner_id, req.channel);
                consent.map(|(key, channel)| PersonCommand::GiveConsent { key, channel, at: Utc::now() })
            })
            .await?;
        Ok(Response::new(pb::GiveConsentResponse { position }))
    }

    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let consent = validate::consent(v, req.purpose, &req.partner_id, req.channel);
                consent.map(|(key, channel)| PersonCommand::WithdrawConsent { key, channel, at: Utc::now() })
            })
            .await?;
        Ok(Response::new(pb::WithdrawConsentResponse { position }))
    }

    async fn record_interests(
        &self,
        request: Request<pb::RecordInterestsRequest>,
    ) -> Result<Response<pb::RecordInterestsResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let interests: Option<BTreeSet<Interest>> = validate::interests(v, "interests", &req.interests);
                interests.map(PersonCommand::RecordInterests)
            })
            .await?;
        Ok(Response::new(pb::RecordInterestsResponse { position }))
    }

    async fn dismiss_duplicate(
        &self,
        request: Request<pb::DismissDuplicateRequest>,
    ) -> Result<Response<pb::DismissDuplicateResponse>, Status> {
        let position = self
            .person_command(&request, |req, v| {
                let other = validate::id(v, "other_person_id", &req.other_person_id);
                other.map(PersonCommand::DismissDuplicate)
            })
            .await?;
        Ok(Response::new(pb::DismissDuplicateResponse { position }))
    }

    async fn merge_people(
        &self,
        request: Request<pb::MergePeopleRequest>,
    ) -> Result<Response<pb::MergePeopleResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        let position = self.merge(principal, request.get_ref()).await?;
        Ok(Response::new(pb::MergePeopleResponse { position }))
    }

    async fn erase_person(
        &self,
        request: Request<pb::ErasePersonRequest>,
    ) -> Result<Response<pb::ErasePersonResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        let position = self.erase(principal, request.get_ref()).await?;
        Ok(Response::new(pb::ErasePersonResponse { position }))
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.get(request.get_ref(), deadline).await?))
    }

    async fn search_people(
        &self,
        request: Request<pb::SearchPeopleRequest>,
    ) -> Result<Response<pb::SearchPeopleResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.search(request.get_ref(), deadline).await?))
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.candidates(request.get_ref(), deadline).await?))
    }

    async fn list_duplicate_flags(
        &self,
        request: Request<pb::ListDuplicateFlagsRequest>,
    ) -> Result<Response<pb::ListDuplicateFlagsResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.flags(request.get_ref(), deadline).await?))
    }

    async fn count_people(
        &self,
        request: Request<pb::CountPeopleRequest>,
    ) -> Result<Response<pb::CountPeopleResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.counts(request.get_ref(), deadline).await?))
    }
}

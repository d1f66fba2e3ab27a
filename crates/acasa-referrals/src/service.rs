//! The gRPC handlers of `acasa.referrals.v1.ReferralService`: validate, run
//! the partner or referral command loop, or read the read models.

use std::{pin::Pin, time::Duration};

use acasa_domain::Violations;
use acasa_eventstore::{CommandError, CommandMeta, Outcome, Repository, Step};
use acasa_projection::Positions;
use acasa_proto::{
    Message as _,
    partner::v1 as types,
    referrals::v1::{self as pb, referral_service_server::ReferralServiceServer},
};
use acasa_runtime::{ApiError, Authenticator, Principal, Role, request, request::meta_of as meta};
use acasa_vault::{DataKey, KeyCache, Vault};
use async_nats::jetstream;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use sqlx::{PgPool, Row as _, postgres::PgRow};
use tokio::time::Instant;
use tonic::{Request, Response, Status, service::Routes};
use uuid::Uuid;

use crate::{
    consents,
    domain::{
        Actor, NewReferral, Partner, PartnerCommand, PartnerFact, Referral, ReferralCommand, ReferralError, now,
        proto_duration, timestamp,
    },
    feed, sealing, validate,
};

/// Most results per page.
const PAGE_MAX: i32 = 200;
/// Results per page when the client does not say.
const PAGE_DEFAULT: i32 = 50;
/// How long an unwrapped data key stays in memory (see [`KeyCache`]).
const KEY_TTL: Duration = Duration::from_secs(60);

const ADMINS: &[Role] = &[Role::Admin];
const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer];
const ACTORS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Partner];
const ANYONE: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Partner];

/// The service's dependencies.
#[derive(Clone)]
pub struct ReferralService {
    partners: Repository<Partner>,
    referrals: Repository<Referral>,
    vault: Vault,
    keys: KeyCache,
    positions: Positions,
    pool: PgPool,
    js: jetstream::Context,
}

impl std::fmt::Debug for ReferralService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferralService").field("referrals", &self.referrals).finish()
    }
}

/// Who the caller acts as: staff (admin, caseworker) first, else its partner.
pub fn actor(principal: &Principal) -> Result<Actor, Status> {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        return Ok(Actor::Staff(principal.subject.clone()));
    }
    caller_partner(principal).map(Actor::Partner)
}

/// The partner a partner token speaks for.
fn caller_partner(principal: &Principal) -> Result<Uuid, Status> {
    if !principal.has(Role::Partner) {
        return Err(Status::permission_denied("requires a partner token"));
    }
    principal
        .partner_id
        .as_deref()
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(|| Status::permission_denied("the partner token names no valid partner_id"))
}

/// Who reads: staff see everything; a partner token sees its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// Admin or caseworker (profiles included).
    Staff,
    /// Viewer (no profiles).
    Viewer,
    /// A partner organisation.
    Partner(Uuid),
}

fn reader(principal: &Principal) -> Result<Reader, Status> {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        Ok(Reader::Staff)
    } else if principal.has(Role::Viewer) {
        Ok(Reader::Viewer)
    } else {
        caller_partner(principal).map(Reader::Partner)
    }
}

fn page_size(v: &mut Violations, size: i32) -> i64 {
    match size {
        0 => i64::from(PAGE_DEFAULT),
        1..=PAGE_MAX => i64::from(size),
        _ => {
            v.add("page_size", format!("must be between 0 and {PAGE_MAX}"));
            0
        }
    }
}

/// Page tokens: `k1:<micros>:<uuid>`, base64url; no personal data.
fn encode_token(at: DateTime<Utc>, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1:{}:{id}", at.timestamp_micros()))
}

fn decode_token(v: &mut Violations, token: &str) -> Option<Option<(DateTime<Utc>, Uuid)>> {
    if token.is_empty() {
        return Some(None);
    }
    let parsed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let mut parts = s.splitn(3, ':');
            (parts.next()? == "k1").then_some(())?;
            let at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
            Some((at, Uuid::parse_str(parts.next()?).ok()?))
        });
    match parsed {
        Some(p) => Some(Some(p)),
        None => {
            v.add("page_token", "is not a token this service issued");
            None
        }
    }
}

fn uuid_page_token(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("p1:{id}"))
}

fn decode_uuid_token(v: &mut Violations, token: &str) -> Option<Option<Uuid>> {
    if token.is_empty() {
        return Some(None);
    }
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("p1:").and_then(|u| Uuid::parse_str(u).ok()));
    if id.is_none() {
        v.add("page_token", "is not a token this service issued");
        return None;
    }
    Some(id)
}

fn time_proto(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

fn partner_row(r: &PgRow) -> Result<pb::Partner, sqlx::Error> {
    let contact: Vec<u8> = r.try_get("contact")?;
    let services: Vec<u8> = r.try_get("services")?;
    let millis: i64 = r.try_get("response_time_ms")?;
    Ok(pb::Partner {
        partner_id: r.try_get::<Uuid, _>("partner_id")?.to_string(),
        kind: i32::from(r.try_get::<i16, _>("kind")?),
        name: r.try_get("name")?,
        idno: r.try_get("idno")?,
        districts: r.try_get("districts")?,
        contact: pb::PartnerContact::decode(contact.as_slice()).ok(),
        services: pb::PartnerServicesSet::decode(services.as_slice()).map(|s| s.services).unwrap_or_default(),
        response_time: Some(proto_duration(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))),
        suspended: r.try_get("suspended")?,
        registered_at: Some(timestamp(r.try_get("registered_at")?)),
    })
}

const REFERRAL_COLUMNS: &str = "r.referral_id, r.person_id, r.partner_id, r.partner_kind, r.service, \
     r.requested_amount, r.requested_currency, r.district, r.referrer_staff, r.referrer_partner, r.status, \
     r.created_at, r.due_at, r.answered_at, r.sla_breached_at, r.progress, r.outcome, r.decline_reason, \
     r.withdraw_reason, r.re_referred_from, r.re_referred_to, r.closed_at";

fn referral_row(r: &PgRow, reader: Reader) -> Result<pb::Referral, sqlx::Error> {
    let amount: Option<i64> = r.try_get("requested_amount")?;
    let currency: Option<String> = r.try_get("requested_currency")?;
    let referrer =
        match (r.try_get::<Option<String>, _>("referrer_staff")?, r.try_get::<Option<Uuid>, _>("referrer_partner")?) {
            (_, Some(p)) => Some(pb::referrer::Kind::PartnerId(p.to_string())),
            // A partner does not learn staff subjects.
            (Some(s), None) if !matches!(reader, Reader::Partner(_)) => Some(pb::referrer::Kind::StaffSubject(s)),
            (Some(_), None) => Some(pb::referrer::Kind::StaffSubject(String::new())),
            (None, None) => None,
        };
    let outcome: Option<Vec<u8>> = r.try_get("outcome")?;
    let id_text = |c: &str| -> Result<String, sqlx::Error> {
        Ok(r.try_get::<Option<Uuid>, _>(c)?.map(|u| u.to_string()).unwrap_or_default())
    };
    Ok(pb::Referral {
        referral_id: r.try_get::<Uuid, _>("referral_id")?.to_string(),
        person_id: if matches!(reader, Reader::Partner(_)) {
            String::new()
        } else {
            r.try_get::<Uuid, _>("person_id")?.to_string()
        },
        partner_id: r.try_get::<Uuid, _>("partner_id")?.to_string(),
        partner_kind: i32::from(r.try_get::<i16, _>("partner_kind")?),
        need: Some(types::Need {
            service: i32::from(r.try_get::<i16, _>("service")?),
            requested_amount: amount
                .zip(currency)
                .map(|(amount_minor, currency)| acasa_proto::r#type::v1::Money { amount_minor, currency }),
        }),
        district: r.try_get("district")?,
        referrer: referrer.map(|k| pb::Referrer { kind: Some(k) }),
        status: i32::from(r.try_get::<i16, _>("status")?),
        created_at: time_proto(r.try_get("created_at")?),
        due_at: time_proto(r.try_get("due_at")?),
        answered_at: time_proto(r.try_get("answered_at")?),
        sla_breached_at: time_proto(r.try_get("sla_breached_at")?),
        progress: i32::from(r.try_get::<i16, _>("progress")?),
        outcome: outcome.and_then(|b| types::Outcome::decode(b.as_slice()).ok()),
        decline_reason: i32::from(r.try_get::<i16, _>("decline_reason")?),
        withdraw_reason: i32::from(r.try_get::<i16, _>("withdraw_reason")?),
        re_referred_from: id_text("re_referred_from")?,
        re_referred_to: id_text("re_referred_to")?,
        profile: None,
        closed_at: time_proto(r.try_get("closed_at")?),
    })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeReferralEventsResponse, Status>> + Send>>;

impl ReferralService {
    /// The service over its repositories, reservations, vault, read models
    /// and the feed stream.
    pub fn new(store: acasa_eventstore::EventStore, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        let config = acasa_eventstore::RepositoryConfig::default();
        let js = store.jetstream().clone();
        Self {
            partners: Repository::new(store.clone(), config),
            referrals: Repository::new(store, config),
            vault,
            keys: KeyCache::new(10_000, KEY_TTL),
            positions,
            pool,
            js,
        }
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(ReferralServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.referrals.v1.ReferralService";

    async fn key(&self, person: Uuid, create: bool) -> Result<Option<DataKey>, ApiError> {
        if let Some(key) = self.keys.get(person) {
            return Ok(Some(key));
        }
        let key = if create { Some(self.vault.key_for_new(person).await?) } else { self.vault.key(person).await? };
        if let Some(key) = &key {
            self.keys.put(person, key.clone());
        }
        Ok(key)
    }

    async fn at_position(&self, projection: &str, min: u64, deadline: Instant) -> Result<u64, ApiError> {
        Ok(if min > 0 {
            self.positions.wait_for(projection, min, deadline).await?
        } else {
            self.positions.current(projection).await?
        })
    }

    // ------------------------------------------------------------ partners

    async fn register_partner(
        &self,
        principal: &Principal,
        req: &pb::RegisterPartnerRequest,
    ) -> Result<pb::RegisterPartnerResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let kind = validate::partner_kind(&mut v, "kind", req.kind);
        let name = validate::text(&mut v, "name", &req.name, validate::NAME_MAX);
        let idno = validate::idno(&mut v, "idno", &req.idno);
        let districts = validate::districts(&mut v, "districts", &req.districts);
        let contact = validate::contact(&mut v, "contact", req.contact.as_ref());
        let services = validate::services(&mut v, "services", &req.services);
        let response_time = validate::response_time(&mut v, "response_time", req.response_time.as_ref(), false);
        let (Some(meta), Some(kind), Some(name), Some(idno), Some(districts), Some(contact), Some(services), Some(rt)) =
            (meta, kind, name, idno, districts, contact, services, response_time)
        else {
            return Err(v.into());
        };
        v.into_result()?;
        let (id, fresh) = self.created_id(self.partners.created_by(&meta).await?)?;
        let registration = pb::PartnerRegistered {
            kind: kind.into(),
            name,
            idno,
            districts,
            contact: Some(contact),
            services,
            response_time: Some(proto_duration(rt)),
            registered_at: Some(timestamp(now())),
        };
        let command = PartnerCommand::Register(registration);
        let outcome = if fresh {
            self.partners.execute_new_with(&id.to_string(), &command, &meta, &acasa_domain::Plain).await
        } else {
            self.partners.execute(&id.to_string(), &command, &meta).await
        };
        let outcome = outcome.map_err(|e| match e {
            CommandError::Claimed { owner, .. } => ApiError::Duplicate {
                message: format!("a partner with this IDNO is already registered: {owner}"),
                existing_id: owner,
            },
            e => e.into(),
        })?;
        Ok(pb::RegisterPartnerResponse { partner_id: outcome.id, position: outcome.position })
    }

    /// The id a creating request addresses: the one its first attempt
    /// created, or a fresh one.
    fn created_id(&self, earlier: Option<String>) -> Result<(Uuid, bool), ApiError> {
        match earlier {
            Some(id) => Uuid::parse_str(&id)
                .map(|id| (id, false))
                .map_err(|_| ApiError::Internal("a request record names a non-uuid".into())),
            None => Ok((Uuid::now_v7(), true)),
        }
    }

    async fn partner_command(&self, id: Uuid, command: PartnerCommand, meta: &CommandMeta) -> Result<u64, ApiError> {
        Ok(self.partners.execute(&id.to_string(), &command, meta).await?.position)
    }

    async fn get_partner_row(&self, req: &pb::GetPartnerRequest, deadline: Instant) -> Result<pb::Partner, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "partner_id", &req.partner_id);
        let Some(id) = id else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let row = sqlx::query("SELECT * FROM referrals.partners WHERE partner_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no partner {id}")))?;
        Ok(partner_row(&row)?)
    }

    async fn list_partners(
        &self,
        req: &pb::ListPartnersRequest,
        deadline: Instant,
    ) -> Result<pb::ListPartnersResponse, ApiError> {
        let mut v = Violations::new();
        let kind = if req.kind == 0 { Some(None) } else { validate::partner_kind(&mut v, "kind", req.kind).map(Some) };
        let service = if req.service == 0 {
            Some(None)
        } else {
            validate::service_kind(&mut v, "service", req.service).map(Some)
        };
        let district = validate::note(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let size = page_size(&mut v, req.page_size);
        let after = decode_uuid_token(&mut v, &req.page_token);
        let (Some(kind), Some(service), Some(district), Some(after)) = (kind, service, district, after) else {
            return Err(v.into());
        };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT * FROM referrals.partners WHERE ($1::smallint IS NULL OR kind = $1) \
             AND ($2::smallint IS NULL OR service_kinds @> ARRAY[$2]) \
             AND ($3::text IS NULL OR districts_folded @> ARRAY[$3]) \
             AND ($4 OR NOT suspended) AND ($5::uuid IS NULL OR partner_id > $5) \
             ORDER BY partner_id LIMIT $6",
        )
        .bind(kind.map(|k| k as i16))
        .bind(service.map(|s| s as i16))
        .bind((!district.is_empty()).then(|| acasa_domain::formats::fold(&district)))
        .bind(req.include_suspended)
        .bind(after)
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > size;
        let partners: Vec<pb::Partner> =
            rows.iter().take(usize::try_from(size).unwrap_or(0)).map(partner_row).collect::<Result<_, _>>()?;
        let next_page_token = match partners.last() {
            Some(p) if more => uuid_page_token(Uuid::parse_str(&p.partner_id).unwrap_or_default()),
            _ => String::new(),
        };
        Ok(pb::ListPartnersResponse { partners, next_page_token })
    }

    // ------------------------------------------------------------ referrals

    /// The person's standing for `partner` in this service's view of the
    /// registry, after waiting for `min_registry_position`.
    async fn person_fact(
        &self,
        person: Uuid,
        partner: Uuid,
        min_registry_position: u64,
        deadline: Instant,
    ) -> Result<crate::domain::PersonFact, ApiError> {
        if min_registry_position > 0 {
            self.positions.wait_for(crate::CONSENTS_PROJECTION, min_registry_position, deadline).await?;
        }
        let mut conn = self.pool.acquire().await?;
        Ok(consents::person_fact(&mut conn, person, partner).await?)
    }

    async fn partner_fact(&self, id: Uuid) -> Result<PartnerFact, ApiError> {
        let (state, _) = self.partners.load(&id.to_string()).await?;
        Ok(PartnerFact { id, state })
    }

    /// The command creating referral `id` with `profile` sealed for it.
    async fn creation(
        &self,
        id: Uuid,
        fresh: bool,
        referrer: Actor,
        new: NewReferralInput,
        deadline: Instant,
    ) -> Result<ReferralCommand, ApiError> {
        // A retry of a referral that happened: the command loop replays the
        // original answer (its request id is recorded in the referral); the
        // facts are not needed (and a different request would be refused as
        // existing).
        if !fresh && self.referrals.load(&id.to_string()).await?.1 > 0 {
            return Ok(ReferralCommand::Create(
                Box::new(NewReferral {
                    person_id: new.person_id,
                    partner: PartnerFact { id: new.partner_id, state: Partner::default() },
                    person: crate::domain::PersonFact::Unknown,
                    need: new.need,
                    district: new.district,
                    referrer,
                    sealed_profile: Vec::new(),
                    re_referred_from: new.re_referred_from,
                }),
                now(),
            ));
        }
        let (person, partner) = tokio::try_join!(
            self.person_fact(new.person_id, new.partner_id, new.min_registry_position, deadline),
            self.partner_fact(new.partner_id),
        )?;
        let sealed_profile = match (&person, new.profile) {
            (crate::domain::PersonFact::Active { consent: true }, Profile::Clear(profile)) => {
                let key =
                    self.key(new.person_id, true).await?.ok_or_else(|| ApiError::Internal("no data key".into()))?;
                sealing::seal(&key, id, new.person_id, &profile)?
            }
            (crate::domain::PersonFact::Active { consent: true }, Profile::Sealed { from, sealed }) => {
                // Re-sealed under the same key for the new referral; without a
                // key (erased) there is nothing to carry over.
                match self.key(new.person_id, false).await? {
                    Some(key) => match sealing::open(&key, from, new.person_id, &sealed) {
                        Some(profile) => sealing::seal(&key, id, new.person_id, &profile)?,
                        None => Vec::new(),
                    },
                    None => Vec::new(),
                }
            }
            // The domain refuses it; nothing to seal.
            _ => Vec::new(),
        };
        Ok(ReferralCommand::Create(
            Box::new(NewReferral {
                person_id: new.person_id,
                partner,
                person,
                need: new.need,
                district: new.district,
                referrer,
                sealed_profile,
                re_referred_from: new.re_referred_from,
            }),
            now(),
        ))
    }

    async fn create_referral(
        &self,
        principal: &Principal,
        referrer: Actor,
        req: &pb::CreateReferralRequest,
        deadline: Instant,
    ) -> Result<pb::CreateReferralResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let person_id = validate::id(&mut v, "person_id", &req.person_id);
        let partner_id = validate::id(&mut v, "partner_id", &req.partner_id);
        let need = validate::need(&mut v, "need", req.need.as_ref());
        let district = validate::text(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let profile = validate::profile(&mut v, "profile", req.profile.as_ref());
        let (Some(meta), Some(person_id), Some(partner_id), Some(need), Some(district), Some(profile)) =
            (meta, person_id, partner_id, need, district, profile)
        else {
            return Err(v.into());
        };
        v.into_result()?;
        let (id, fresh) = self.created_id(self.referrals.created_by(&meta).await?)?;
        let input = NewReferralInput {
            person_id,
            partner_id,
            need,
            district,
            profile: Profile::Clear(profile),
            re_referred_from: None,
            min_registry_position: req.min_registry_position,
        };
        let command = self.creation(id, fresh, referrer, input, deadline).await?;
        let step = Step { id: id.to_string(), command: &command, codec: &acasa_domain::Plain, new: fresh };
        let outcome = self.first(self.referrals.execute_all(&[step], &meta).await?)?;
        let id = Uuid::parse_str(&outcome.id).unwrap_or(id);
        let due_at = self.due_at(id, &outcome).await?;
        Ok(pb::CreateReferralResponse { referral_id: id.to_string(), position: outcome.position, due_at })
    }

    /// A created referral's due time: from its creation event, or (a replay
    /// that returned none) from the aggregate.
    async fn due_at(&self, id: Uuid, created: &Outcome<Referral>) -> Result<Option<prost_types::Timestamp>, ApiError> {
        Ok(match created.events.first() {
            Some(crate::domain::ReferralEvent::Created(c)) => c.due_at,
            _ => Some(timestamp(self.referrals.load(&id.to_string()).await?.0.due_at)),
        })
    }

    async fn re_refer(
        &self,
        principal: &Principal,
        by: Actor,
        req: &pb::ReReferReferralRequest,
        deadline: Instant,
    ) -> Result<pb::ReReferReferralResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let old_id = validate::id(&mut v, "referral_id", &req.referral_id);
        let partner_id = validate::id(&mut v, "partner_id", &req.partner_id);
        let (Some(meta), Some(old_id), Some(partner_id)) = (meta, old_id, partner_id) else { return Err(v.into()) };
        let (new_id, fresh) = self.created_id(self.referrals.created_by(&meta).await?)?;
        let (old, version) = self.referrals.load(&old_id.to_string()).await?;
        if version == 0 {
            return Err(ApiError::NotFound(format!("no referral {old_id}")));
        }
        let mark = ReferralCommand::ReRefer {
            by: by.clone(),
            new_referral_id: new_id,
            new_partner_id: partner_id,
            now: now(),
        };
        let replay = !fresh && self.referrals.load(&new_id.to_string()).await?.1 > 0;
        if !replay {
            // Refuse early, before sealing anything, if the old referral
            // cannot be re-referred.
            use acasa_domain::Aggregate as _;
            if let Err(e) = old.decide(&mark) {
                return Err(CommandError::Rejected(e).into());
            }
        }
        let input = NewReferralInput {
            person_id: old.person_id,
            partner_id,
            need: old.need.clone(),
            district: old.district.clone(),
            profile: Profile::Sealed { from: old_id, sealed: old.sealed_profile.clone() },
            re_referred_from: Some(old_id),
            min_registry_position: req.min_registry_position,
        };
        let create = self.creation(new_id, fresh, by, input, deadline).await?;
        // The new referral and the old one's mark in one atomic batch: both
        // are stored or neither (the old one changed meanwhile, e.g. was
        // accepted, and the whole command is refused), so nothing is undone.
        let steps = [
            Step { id: new_id.to_string(), command: &create, codec: &acasa_domain::Plain, new: fresh },
            Step { id: old_id.to_string(), command: &mark, codec: &acasa_domain::Plain, new: false },
        ];
        let outcomes = self.referrals.execute_all(&steps, &meta).await?;
        let created = outcomes
            .into_iter()
            .find(|o| o.id != old_id.to_string())
            .ok_or_else(|| ApiError::Internal("a re-referral without its new referral".into()))?;
        let new_id = Uuid::parse_str(&created.id).unwrap_or(new_id);
        Ok(pb::ReReferReferralResponse {
            referral_id: new_id.to_string(),
            position: created.position,
            due_at: self.due_at(new_id, &created).await?,
        })
    }

    fn first(&self, outcomes: Vec<Outcome<Referral>>) -> Result<Outcome<Referral>, ApiError> {
        outcomes.into_iter().next().ok_or_else(|| ApiError::Internal("a command without outcome".into()))
    }

    /// Runs a transition on a referral, named by the request.
    async fn transition<R>(
        &self,
        request: &Request<R>,
        roles: &[Role],
        build: impl FnOnce(&R, Actor, &mut Violations) -> Option<ReferralCommand>,
    ) -> Result<u64, Status>
    where
        R: ReferralRequest,
    {
        let principal = Principal::authorized(request, roles)?;
        let by = actor(principal)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req.request_id(), req, R::clear_request_id);
        let id = validate::id(&mut v, "referral_id", req.referral_id());
        let command = build(req, by, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else {
            return Err(ApiError::from(v).into());
        };
        v.into_result().map_err(ApiError::from)?;
        let outcome = self.referrals.execute(&id.to_string(), &command, &meta).await;
        match outcome {
            Ok(o) => Ok(o.position),
            Err(CommandError::Rejected(ReferralError::NotFound | ReferralError::NotVisible)) => {
                Err(ApiError::NotFound(format!("no referral {id}")).into())
            }
            Err(e) => Err(ApiError::from(e).into()),
        }
    }

    async fn get_referral(
        &self,
        reader: Reader,
        req: &pb::GetReferralRequest,
        deadline: Instant,
    ) -> Result<pb::Referral, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "referral_id", &req.referral_id);
        let Some(id) = id else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS}, r.profile_sealed, \
             (c.given IS TRUE AND p.status = 1) AS shareable \
             FROM referrals.referrals r \
             LEFT JOIN referrals.consents c ON c.person_id = r.person_id AND c.partner_id = r.partner_id \
             LEFT JOIN referrals.people p ON p.person_id = r.person_id \
             WHERE r.referral_id = $1"
        );
        let not_found = || ApiError::NotFound(format!("no referral {id}"));
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?.ok_or_else(not_found)?;
        let mut referral = referral_row(&row, reader)?;
        let addressee = Uuid::parse_str(&referral.partner_id).unwrap_or_default();
        let open = matches!(referral.status, 1..=4);
        let sees_profile = match reader {
            Reader::Staff => true,
            Reader::Viewer => false,
            Reader::Partner(p) if p == addressee => open,
            Reader::Partner(p) => {
                let referrer = row.try_get::<Option<Uuid>, _>("referrer_partner")?;
                if referrer != Some(p) {
                    return Err(not_found());
                }
                false
            }
        };
        let shareable: Option<bool> = row.try_get("shareable")?;
        let sealed: Option<Vec<u8>> = row.try_get("profile_sealed")?;
        if sees_profile
            && shareable == Some(true)
            && let Some(sealed) = sealed
        {
            let person: Uuid = row.try_get("person_id")?;
            if let Some(key) = self.key(person, false).await? {
                referral.profile = sealing::open(&key, id, person, &sealed);
            }
        }
        Ok(referral)
    }

    async fn list_inbox(
        &self,
        reader: Reader,
        req: &pb::ListInboxRequest,
        deadline: Instant,
    ) -> Result<pb::ListInboxResponse, ApiError> {
        let mut v = Violations::new();
        let partner = match reader {
            Reader::Partner(own) => match validate::optional_id(&mut v, "partner_id", &req.partner_id) {
                Some(Some(p)) if p != own => {
                    return Err(ApiError::Rejected {
                        kind: acasa_domain::RejectionKind::NotFound,
                        message: "a partner token reads its own inbox only".into(),
                    });
                }
                Some(_) => Some(own),
                None => None,
            },
            _ => validate::id(&mut v, "partner_id", &req.partner_id),
        };
        let size = page_size(&mut v, req.page_size);
        let after = decode_token(&mut v, &req.page_token);
        let (Some(partner), Some(after)) = (partner, after) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals.referrals r \
             WHERE r.partner_id = $1 AND r.status IN (1, 2, 3) \
             AND ($2::timestamptz IS NULL OR (r.due_at, r.referral_id) > ($2, $3)) \
             ORDER BY r.due_at, r.referral_id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(partner)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(size + 1)
            .fetch_all(&self.pool)
            .await?;
        let (referrals, next_page_token) = self.page(&rows, size, reader, "due_at")?;
        Ok(pb::ListInboxResponse { referrals, next_page_token })
    }

    fn page(
        &self,
        rows: &[PgRow],
        size: i64,
        reader: Reader,
        key: &str,
    ) -> Result<(Vec<pb::Referral>, String), ApiError> {
        let take = usize::try_from(size).unwrap_or(0);
        let referrals: Vec<pb::Referral> =
            rows.iter().take(take).map(|r| referral_row(r, reader)).collect::<Result<_, _>>()?;
        let token = match rows.get(take.saturating_sub(1)) {
            Some(last) if rows.len() > take => {
                encode_token(last.try_get::<DateTime<Utc>, _>(key)?, last.try_get("referral_id")?)
            }
            _ => String::new(),
        };
        Ok((referrals, token))
    }

    async fn list_breaches(
        &self,
        reader: Reader,
        req: &pb::ListSlaBreachesRequest,
        deadline: Instant,
    ) -> Result<pb::ListSlaBreachesResponse, ApiError> {
        let mut v = Violations::new();
        let partner = match reader {
            Reader::Partner(own) => Some(Some(own)),
            _ => validate::optional_id(&mut v, "partner_id", &req.partner_id),
        };
        let size = page_size(&mut v, req.page_size);
        let before = decode_token(&mut v, &req.page_token);
        let (Some(partner), Some(before)) = (partner, before) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals.referrals r \
             WHERE r.sla_breached_at IS NOT NULL AND ($1::uuid IS NULL OR r.partner_id = $1) \
             AND (NOT $2 OR r.status = 1) \
             AND ($3::timestamptz IS NULL OR (r.sla_breached_at, r.referral_id) < ($3, $4)) \
             ORDER BY r.sla_breached_at DESC, r.referral_id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(partner)
            .bind(req.unanswered_only)
            .bind(before.map(|a| a.0))
            .bind(before.map(|a| a.1))
            .bind(size + 1)
            .fetch_all(&self.pool)
            .await?;
        let (referrals, next_page_token) = self.page(&rows, size, reader, "sla_breached_at")?;
        Ok(pb::ListSlaBreachesResponse { referrals, next_page_token })
    }

    async fn pipeline(
        &self,
        req: &pb::GetPipelineRequest,
        deadline: Instant,
    ) -> Result<pb::GetPipelineResponse, ApiError> {
        let mut v = Violations::new();
        let partner = validate::optional_id(&mut v, "partner_id", &req.partner_id);
        let Some(partner) = partner else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let rows: Vec<(Uuid, String, i16, i64)> = sqlx::query_as(
            "SELECT r.partner_id, p.name, r.status, count(*) FROM referrals.referrals r \
             JOIN referrals.partners p ON p.partner_id = r.partner_id \
             WHERE ($1::uuid IS NULL OR r.partner_id = $1) \
             GROUP BY r.partner_id, p.name, r.status ORDER BY p.name, r.partner_id, r.status",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await?;
        Ok(pb::GetPipelineResponse {
            entries: rows
                .into_iter()
                .map(|(id, name, status, count)| pb::PipelineEntry {
                    partner_id: id.to_string(),
                    partner_name: name,
                    status: i32::from(status),
                    count,
                })
                .collect(),
        })
    }

    async fn conversion(
        &self,
        req: &pb::GetConversionRequest,
        deadline: Instant,
    ) -> Result<pb::GetConversionResponse, ApiError> {
        let mut v = Violations::new();
        let kind = if req.partner_kind == 0 {
            Some(None)
        } else {
            validate::partner_kind(&mut v, "partner_kind", req.partner_kind).map(Some)
        };
        let district = validate::note(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let (Some(kind), Some(district)) = (kind, district) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let district = (!district.is_empty()).then(|| acasa_domain::formats::fold(&district));
        // Re-referred referrals count once, for the partner they went on to.
        let rows: Vec<(i16, String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT partner_kind, district_folded, min(district), count(*), count(accepted_at), \
             count(*) FILTER (WHERE outcome_kind > 0), count(*) FILTER (WHERE outcome_kind IN (1, 2)) \
             FROM referrals.referrals WHERE status <> 8 \
             AND ($1::smallint IS NULL OR partner_kind = $1) AND ($2::text IS NULL OR district_folded = $2) \
             GROUP BY partner_kind, district_folded ORDER BY partner_kind, district_folded",
        )
        .bind(kind.map(|k| k as i16))
        .bind(&district)
        .fetch_all(&self.pool)
        .await?;
        let sums: Vec<(i16, String, String, i64)> = sqlx::query_as(
            "SELECT partner_kind, district_folded, disbursed_currency, sum(disbursed_amount)::bigint \
             FROM referrals.referrals WHERE outcome_kind = 1 AND status <> 8 \
             AND ($1::smallint IS NULL OR partner_kind = $1) AND ($2::text IS NULL OR district_folded = $2) \
             GROUP BY partner_kind, district_folded, disbursed_currency ORDER BY disbursed_currency",
        )
        .bind(kind.map(|k| k as i16))
        .bind(&district)
        .fetch_all(&self.pool)
        .await?;
        Ok(pb::GetConversionResponse {
            entries: rows
                .into_iter()
                .map(|(kind, folded, name, referred, accepted, with_outcome, delivered)| pb::ConversionEntry {
                    partner_kind: i32::from(kind),
                    district: name,
                    referred,
                    accepted,
                    with_outcome,
                    delivered,
                    disbursed: sums
                        .iter()
                        .filter(|s| s.0 == kind && s.1 == folded)
                        .map(|s| acasa_proto::r#type::v1::Money { amount_minor: s.3, currency: s.2.clone() })
                        .collect(),
                })
                .collect(),
        })
    }
}

/// The shared profile of a new referral: from the request, or re-sealed from
/// the referral it re-refers.
enum Profile {
    Clear(pb::SharedProfile),
    Sealed { from: Uuid, sealed: Vec<u8> },
}

struct NewReferralInput {
    person_id: Uuid,
    partner_id: Uuid,
    need: types::Need,
    district: String,
    profile: Profile,
    re_referred_from: Option<Uuid>,
    min_registry_position: u64,
}

/// Requests naming a referral with a request id.
trait ReferralRequest: acasa_proto::Message + acasa_proto::Name + Clone {
    fn request_id(&self) -> &str;
    fn referral_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! referral_request {
    ($($t:ty),*) => {$(
        impl ReferralRequest for $t {
            fn request_id(&self) -> &str { &self.request_id }
            fn referral_id(&self) -> &str { &self.referral_id }
            fn clear_request_id(&mut self) { self.request_id.clear() }
        }
    )*};
}

referral_request!(
    pb::AcceptReferralRequest,
    pb::DeclineReferralRequest,
    pb::ReportProgressRequest,
    pb::RecordOutcomeRequest,
    pb::CloseReferralRequest,
    pb::WithdrawReferralRequest
);

/// Requests naming a partner with a request id.
trait PartnerRequest: acasa_proto::Message + acasa_proto::Name + Clone {
    fn request_id(&self) -> &str;
    fn partner_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! partner_request {
    ($($t:ty),*) => {$(
        impl PartnerRequest for $t {
            fn request_id(&self) -> &str { &self.request_id }
            fn partner_id(&self) -> &str { &self.partner_id }
            fn clear_request_id(&mut self) { self.request_id.clear() }
        }
    )*};
}

partner_request!(
    pb::SetPartnerServicesRequest,
    pb::SetPartnerResponseTimeRequest,
    pb::SuspendPartnerRequest,
    pb::ReactivatePartnerRequest
);

impl ReferralService {
    async fn partner_request<R: PartnerRequest>(
        &self,
        request: &Request<R>,
        self_allowed: bool,
        build: impl FnOnce(&R, &mut Violations) -> Option<PartnerCommand>,
    ) -> Result<u64, Status> {
        let principal = Principal::of(request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = validate::id(&mut v, "partner_id", req.partner_id());
        let itself = self_allowed
            && principal.has(Role::Partner)
            && id.is_some()
            && principal.partner_id.as_deref().and_then(|p| Uuid::parse_str(p).ok()) == id;
        if !itself {
            principal.require_any(ADMINS)?;
        }
        let meta = meta(principal, &mut v, req.request_id(), req, R::clear_request_id);
        let command = build(req, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else {
            return Err(ApiError::from(v).into());
        };
        v.into_result().map_err(ApiError::from)?;
        Ok(self.partner_command(id, command, &meta).await?)
    }
}

#[tonic::async_trait]
impl pb::referral_service_server::ReferralService for ReferralService {
    async fn register_partner(
        &self,
        request: Request<pb::RegisterPartnerRequest>,
    ) -> Result<Response<pb::RegisterPartnerResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        Ok(Response::new(self.register_partner(principal, request.get_ref()).await?))
    }

    async fn set_partner_services(
        &self,
        request: Request<pb::SetPartnerServicesRequest>,
    ) -> Result<Response<pb::SetPartnerServicesResponse>, Status> {
        let position = self
            .partner_request(&request, true, |r, v| {
                validate::services(v, "services", &r.services).map(PartnerCommand::SetServices)
            })
            .await?;
        Ok(Response::new(pb::SetPartnerServicesResponse { position }))
    }

    async fn set_partner_response_time(
        &self,
        request: Request<pb::SetPartnerResponseTimeRequest>,
    ) -> Result<Response<pb::SetPartnerResponseTimeResponse>, Status> {
        let position = self
            .partner_request(&request, false, |r, v| {
                validate::response_time(v, "response_time", r.response_time.as_ref(), true)
                    .map(PartnerCommand::SetResponseTime)
            })
            .await?;
        Ok(Response::new(pb::SetPartnerResponseTimeResponse { position }))
    }

    async fn suspend_partner(
        &self,
        request: Request<pb::SuspendPartnerRequest>,
    ) -> Result<Response<pb::SuspendPartnerResponse>, Status> {
        let position = self
            .partner_request(&request, false, |r, v| {
                validate::note(v, "reason", &r.reason, validate::NOTE_MAX)
                    .map(|reason| PartnerCommand::Suspend { reason })
            })
            .await?;
        Ok(Response::new(pb::SuspendPartnerResponse { position }))
    }

    async fn reactivate_partner(
        &self,
        request: Request<pb::ReactivatePartnerRequest>,
    ) -> Result<Response<pb::ReactivatePartnerResponse>, Status> {
        let position = self.partner_request(&request, false, |_, _| Some(PartnerCommand::Reactivate)).await?;
        Ok(Response::new(pb::ReactivatePartnerResponse { position }))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Result<Response<pb::GetPartnerResponse>, Status> {
        Principal::authorized(&request, ANYONE)?;
        let deadline = request::deadline(&request);
        let partner = self.get_partner_row(request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetPartnerResponse { partner: Some(partner) }))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Result<Response<pb::ListPartnersResponse>, Status> {
        Principal::authorized(&request, ANYONE)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_partners(request.get_ref(), deadline).await?))
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        let principal = Principal::authorized(&request, ACTORS)?;
        let deadline = request::deadline(&request);
        let referrer = actor(principal)?;
        Ok(Response::new(self.create_referral(principal, referrer, request.get_ref(), deadline).await?))
    }

    async fn accept_referral(
        &self,
        request: Request<pb::AcceptReferralRequest>,
    ) -> Result<Response<pb::AcceptReferralResponse>, Status> {
        let position = self.transition(&request, ACTORS, |_, by, _| Some(ReferralCommand::Accept(by, now()))).await?;
        Ok(Response::new(pb::AcceptReferralResponse { position }))
    }

    async fn decline_referral(
        &self,
        request: Request<pb::DeclineReferralRequest>,
    ) -> Result<Response<pb::DeclineReferralResponse>, Status> {
        let position = self
            .transition(&request, ACTORS, |r, by, v| {
                let reason = validate::decline_reason(v, "reason", r.reason);
                let note = validate::note(v, "note", &r.note, validate::NOTE_MAX);
                Some(ReferralCommand::Decline(by, reason?, note?, now()))
            })
            .await?;
        Ok(Response::new(pb::DeclineReferralResponse { position }))
    }

    async fn report_progress(
        &self,
        request: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::ReportProgressResponse>, Status> {
        let position = self
            .transition(&request, ACTORS, |r, by, v| {
                let stage = validate::progress_stage(v, "stage", r.stage)?;
                Some(ReferralCommand::ReportProgress(by, stage, now()))
            })
            .await?;
        Ok(Response::new(pb::ReportProgressResponse { position }))
    }

    async fn record_outcome(
        &self,
        request: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        let position = self
            .transition(&request, ACTORS, |r, by, v| {
                let outcome = validate::outcome(v, "outcome", r.outcome.as_ref())?;
                Some(ReferralCommand::RecordOutcome(by, outcome, now()))
            })
            .await?;
        Ok(Response::new(pb::RecordOutcomeResponse { position }))
    }

    async fn close_referral(
        &self,
        request: Request<pb::CloseReferralRequest>,
    ) -> Result<Response<pb::CloseReferralResponse>, Status> {
        let position = self.transition(&request, ACTORS, |_, by, _| Some(ReferralCommand::Close(by, now()))).await?;
        Ok(Response::new(pb::CloseReferralResponse { position }))
    }

    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::WithdrawReferralResponse>, Status> {
        let position = self
            .transition(&request, ACTORS, |r, by, v| {
                let reason = validate::withdraw_reason(v, "reason", r.reason)?;
                Some(ReferralCommand::Withdraw(by, reason, now()))
            })
            .await?;
        Ok(Response::new(pb::WithdrawReferralResponse { position }))
    }

    async fn re_refer_referral(
        &self,
        request: Request<pb::ReReferReferralRequest>,
    ) -> Result<Response<pb::ReReferReferralResponse>, Status> {
        let principal = Principal::authorized(&request, ACTORS)?;
        let deadline = request::deadline(&request);
        let by = actor(principal)?;
        Ok(Response::new(self.re_refer(principal, by, request.get_ref(), deadline).await?))
    }

    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        let principal = Principal::authorized(&request, ANYONE)?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        let referral = self.get_referral(reader, request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetReferralResponse { referral: Some(referral) }))
    }

    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let principal = Principal::authorized(&request, ANYONE)?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_inbox(reader, request.get_ref(), deadline).await?))
    }

    async fn get_pipeline(
        &self,
        request: Request<pb::GetPipelineRequest>,
    ) -> Result<Response<pb::GetPipelineResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.pipeline(request.get_ref(), deadline).await?))
    }

    async fn get_conversion(
        &self,
        request: Request<pb::GetConversionRequest>,
    ) -> Result<Response<pb::GetConversionResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.conversion(request.get_ref(), deadline).await?))
    }

    async fn list_sla_breaches(
        &self,
        request: Request<pb::ListSlaBreachesRequest>,
    ) -> Result<Response<pb::ListSlaBreachesResponse>, Status> {
        let principal = Principal::authorized(&request, ANYONE)?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_breaches(reader, request.get_ref(), deadline).await?))
    }

    type SubscribeReferralEventsStream = EventStream;

    async fn subscribe_referral_events(
        &self,
        request: Request<pb::SubscribeReferralEventsRequest>,
    ) -> Result<Response<Self::SubscribeReferralEventsStream>, Status> {
        let principal = Principal::authorized(&request, &[Role::Partner])?;
        let partner = caller_partner(principal)?;
        let from = request.get_ref().from_position;
        let items = feed::subscribe(&self.js, partner, from)
            .await
            .map_err(|e| Status::unavailable(format!("partner feed unavailable: {e}")))?;
        let stream = items.map(|item| match item {
            Ok(i) => Ok(pb::SubscribeReferralEventsResponse {
                position: i.position,
                id: i.id,
                r#type: i.kind,
                time: i.time.map(timestamp),
                event: Some(i.event),
            }),
            Err(e) => Err(Status::unavailable(format!("partner feed interrupted: {e}"))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

//! The referral system's commands: validate the request into domain values,
//! gather the outside facts the aggregate needs (the partner's state, the
//! person's consent from this service's own projection of the registry), let
//! the partner or referral decide, and append through the command loop.

use acasa_domain::Violations;
use acasa_eventstore::{CommandError, CommandMeta, Outcome, Step};
use acasa_proto::{
    Idempotent,
    partner::v1 as types,
    referrals::v1::{self as pb},
};
use acasa_runtime::{ApiError, Principal, Role, request::meta_of as meta};
use acasa_vault::DataKey;
use tokio::time::Instant;
use tonic::{Request, Status};
use uuid::Uuid;

use crate::grpc::{ADMINS, ReferralService, actor};
use crate::{
    consents,
    domain::{
        Actor, NewPartner, NewReferral, Partner, PartnerCommand, PartnerFact, Referral, ReferralCommand, ReferralError,
        now, timestamp,
    },
    sealing, validate,
};

impl ReferralService {
    pub(crate) async fn key(&self, person: Uuid, create: bool) -> Result<Option<DataKey>, ApiError> {
        Ok(if create { Some(self.keys.create(person).await?) } else { self.keys.get(person).await? })
    }

    // ------------------------------------------------------------ partners
    pub(crate) async fn register_partner(
        &self,
        principal: &Principal,
        req: &pb::RegisterPartnerRequest,
    ) -> Result<pb::RegisterPartnerResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
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
        let (id, fresh) = self.partners.creation_id(&meta).await?;
        let new = NewPartner { kind, name, idno, districts, contact, services, response_time: rt };
        let command = PartnerCommand::Register(Box::new(new), now());
        let step = Step { id: id.to_string(), command: &command, codec: &acasa_domain::Plain, new: fresh };
        let outcome = self.partners.execute_step(step, &meta).await.map_err(|e| match e {
            CommandError::Claimed { owner, .. } => ApiError::Duplicate {
                message: format!("a partner with this IDNO is already registered: {owner}"),
                existing_id: owner,
            },
            e => e.into(),
        })?;
        Ok(pb::RegisterPartnerResponse { partner_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn partner_command(
        &self,
        id: Uuid,
        command: PartnerCommand,
        meta: &CommandMeta,
    ) -> Result<u64, ApiError> {
        Ok(self.partners.execute(&id.to_string(), &command, meta).await?.position)
    }

    // ------------------------------------------------------------ referrals
    /// The person's standing for `partner` in this service's view of the
    /// registry, after waiting for `min_registry_position`.
    pub(crate) async fn person_fact(
        &self,
        person: Uuid,
        partner: Uuid,
        min_registry_position: u64,
        deadline: Instant,
    ) -> Result<crate::domain::PersonFact, ApiError> {
        if min_registry_position > 0 {
            let registry = acasa_eventstore::stream_name_of("registry");
            self.positions
                .wait_for(crate::CONSENTS_PROJECTION, &registry, min_registry_position, deadline)
                .await
                .map_err(|e| ApiError::waiting(e, "min_registry_position"))?;
        }
        let mut conn = self.pool.acquire().await?;
        Ok(consents::person_fact(&mut conn, person, partner).await?)
    }

    pub(crate) async fn partner_fact(&self, id: Uuid) -> Result<PartnerFact, ApiError> {
        let (state, _) = self.partners.load(&id.to_string()).await?;
        Ok(PartnerFact { id, state })
    }

    /// The command creating referral `id` with `profile` sealed for it.
    pub(crate) async fn creation(
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

    pub(crate) async fn create_referral(
        &self,
        principal: &Principal,
        referrer: Actor,
        req: &pb::CreateReferralRequest,
        deadline: Instant,
    ) -> Result<pb::CreateReferralResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
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
        let (id, fresh) = self.referrals.creation_id(&meta).await?;
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
        let outcome = self.referrals.execute_step(step, &meta).await?;
        let id = Uuid::parse_str(&outcome.id).unwrap_or(id);
        let due_at = self.due_at(id, &outcome).await?;
        Ok(pb::CreateReferralResponse { referral_id: id.to_string(), position: outcome.position, due_at })
    }

    /// A created referral's due time: from its creation event, or (a replay
    /// that returned none) from the aggregate.
    pub(crate) async fn due_at(
        &self,
        id: Uuid,
        created: &Outcome<Referral>,
    ) -> Result<Option<prost_types::Timestamp>, ApiError> {
        Ok(match created.events.first() {
            Some(crate::domain::ReferralEvent::Created(c)) => c.due_at,
            _ => Some(timestamp(self.referrals.load(&id.to_string()).await?.0.due_at)),
        })
    }

    pub(crate) async fn re_refer(
        &self,
        principal: &Principal,
        by: Actor,
        req: &pb::ReReferReferralRequest,
        deadline: Instant,
    ) -> Result<pb::ReReferReferralResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let old_id = validate::id(&mut v, "referral_id", &req.referral_id);
        let partner_id = validate::id(&mut v, "partner_id", &req.partner_id);
        let (Some(meta), Some(old_id), Some(partner_id)) = (meta, old_id, partner_id) else { return Err(v.into()) };
        let (new_id, fresh) = self.referrals.creation_id(&meta).await?;
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

    /// Runs a transition on a referral, named by the request.
    pub(crate) async fn transition<R>(
        &self,
        request: &Request<R>,
        referral_id: impl Fn(&R) -> &str,
        roles: &[Role],
        build: impl FnOnce(&R, Actor, &mut Violations) -> Option<ReferralCommand>,
    ) -> Result<u64, Status>
    where
        R: Idempotent,
    {
        let principal = self.authorized(request, roles).await?;
        let by = actor(principal)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let id = validate::id(&mut v, "referral_id", referral_id(req));
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

    pub(crate) async fn partner_request<R: Idempotent>(
        &self,
        request: &Request<R>,
        partner_id: impl Fn(&R) -> &str,
        self_allowed: bool,
        build: impl FnOnce(&R, &mut Violations) -> Option<PartnerCommand>,
    ) -> Result<u64, Status> {
        let principal = Principal::of(request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = validate::id(&mut v, "partner_id", partner_id(req));
        let itself = self_allowed
            && principal.has(Role::Partner)
            && id.is_some()
            && principal.partner_id.as_deref().and_then(|p| Uuid::parse_str(p).ok()) == id;
        if !itself {
            principal.require_any(ADMINS)?;
        }
        let meta = meta(principal, &mut v, req);
        let command = build(req, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else {
            return Err(ApiError::from(v).into());
        };
        v.into_result().map_err(ApiError::from)?;
        Ok(self.partner_command(id, command, &meta).await?)
    }
}

/// The shared profile of a new referral: from the request, or re-sealed from
/// the referral it re-refers.
pub(crate) enum Profile {
    Clear(pb::SharedProfile),
    Sealed { from: Uuid, sealed: Vec<u8> },
}

pub(crate) struct NewReferralInput {
    person_id: Uuid,
    partner_id: Uuid,
    need: types::Need,
    district: String,
    profile: Profile,
    re_referred_from: Option<Uuid>,
    min_registry_position: u64,
}

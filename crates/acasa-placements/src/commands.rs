//! The placements' commands: validate the request into domain values,
//! gather the outside facts the aggregate decides on (the offer and its
//! host, the person's standing in this service's own view of the registry),
//! let the aggregate decide, and append through the command loop — one
//! atomic batch per command, its claims (the offer's place, the person's
//! one active placement, the host's IDNO) and request record included.

use acasa_domain::{Aggregate, EventCodec, Rejection, Violations};
use acasa_eventstore::{CommandError, Repository, Step};
use acasa_proto::{Idempotent, placements::v1 as pb};
use acasa_runtime::{ApiError, Principal, Role, request::meta_of as meta};
use tokio::time::Instant;
use tonic::{Request, Status};
use uuid::Uuid;

use crate::{
    domain::{
        ACTIVE_PLACEMENT, OFFER_PLACE, PersonFact, PlacementCommand, Proposal, ProposalFacts,
        host::{HOST_IDNO, HostCommand},
        offer::{NewOffer, OfferCommand},
        slot_order,
    },
    grpc::{PlacementService, STAFF, caller_host},
    now, validate,
};

fn rejected<E: Rejection>(e: CommandError<E>) -> Status {
    ApiError::from(e).into()
}

impl PlacementService {
    /// Runs `build`'s command on aggregate `id_of(request)` of `repo`, for
    /// callers with one of `roles`.
    pub(crate) async fn command_on<A, R>(
        &self,
        repo: &Repository<A>,
        request: &Request<R>,
        id_field: &'static str,
        id_of: impl Fn(&R) -> &str,
        roles: &[Role],
        build: impl FnOnce(&R, &mut Violations) -> Option<A::Command>,
    ) -> Result<u64, Status>
    where
        A: Aggregate,
        A::Event: EventCodec,
        R: Idempotent,
    {
        let principal = Principal::authorized(request, roles)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let id = validate::id(&mut v, id_field, id_of(req));
        let command = build(req, &mut v);
        let (Some(meta), Some(id), Some(command)) = (meta, id, command) else {
            return Err(ApiError::from(v).into());
        };
        v.into_result().map_err(ApiError::from)?;
        Ok(repo.execute(&id.to_string(), &command, &meta).await.map_err(rejected)?.position)
    }

    /// Runs a placement command built from the request.
    pub(crate) async fn transition<R: Idempotent>(
        &self,
        request: &Request<R>,
        id_of: impl Fn(&R) -> &str,
        roles: &[Role],
        build: impl FnOnce(&R, &mut Violations) -> Option<PlacementCommand>,
    ) -> Result<u64, Status> {
        self.command_on(&self.placements, request, "placement_id", id_of, roles, build).await
    }

    // ------------------------------------------------------------ hosts
    pub(crate) async fn register_host(
        &self,
        principal: &Principal,
        req: &pb::RegisterHostRequest,
    ) -> Result<pb::RegisterHostResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let idno = validate::idno(&mut v, "idno", &req.idno);
        let details = validate::host_details(&mut v, "details", req.details.as_ref());
        let (Some(meta), Some(idno), Some(details)) = (meta, idno, details) else { return Err(v.into()) };
        v.into_result()?;
        let (id, fresh) = self.hosts.creation_id(&meta).await?;
        let command = HostCommand::Register { id, idno, details };
        let step = Step { id: id.to_string(), command: &command, codec: &acasa_domain::Plain, new: fresh };
        let outcome = self.hosts.execute_step(step, &meta).await.map_err(|e| match e {
            CommandError::Claimed { kind: HOST_IDNO, owner } => ApiError::Duplicate {
                message: format!("a host institution with this IDNO is already registered: {owner}"),
                existing_id: owner,
            },
            e => e.into(),
        })?;
        Ok(pb::RegisterHostResponse { host_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn update_host(&self, request: &Request<pb::UpdateHostRequest>) -> Result<u64, Status> {
        self.command_on(
            &self.hosts,
            request,
            "host_id",
            |r| &r.host_id,
            STAFF,
            |r, v| validate::host_details(v, "details", r.details.as_ref()).map(HostCommand::Update),
        )
        .await
    }

    pub(crate) async fn suspend_host(&self, request: &Request<pb::SuspendHostRequest>) -> Result<u64, Status> {
        self.command_on(
            &self.hosts,
            request,
            "host_id",
            |r| &r.host_id,
            STAFF,
            |r, v| validate::note(v, "reason", &r.reason).map(|reason| HostCommand::Suspend(reason, now())),
        )
        .await
    }

    pub(crate) async fn reactivate_host(&self, request: &Request<pb::ReactivateHostRequest>) -> Result<u64, Status> {
        self.command_on(
            &self.hosts,
            request,
            "host_id",
            |r| &r.host_id,
            STAFF,
            |_, _| Some(HostCommand::Reactivate(now())),
        )
        .await
    }

    // ------------------------------------------------------------ offers
    pub(crate) async fn publish_offer(
        &self,
        principal: &Principal,
        req: &pb::PublishOfferRequest,
    ) -> Result<pb::PublishOfferResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let host = validate::id(&mut v, "host_id", &req.host_id);
        let terms = validate::offer_terms(&mut v, "terms", req.terms.as_ref());
        let (Some(meta), Some(host), Some(terms)) = (meta, host, terms) else { return Err(v.into()) };
        v.into_result()?;
        let (id, fresh) = self.offers.creation_id(&meta).await?;
        let (host_state, version) = self.hosts.load(&host.to_string()).await?;
        if version == 0 && fresh {
            return Err(ApiError::NotFound(format!("no host institution {host}")));
        }
        let new = NewOffer {
            id,
            host,
            host_active: host_state.exists() && !host_state.suspended,
            subject: terms.subject,
            places: terms.places,
            terms: terms.terms,
            languages: terms.languages,
            start_from: terms.start_from,
            start_until: terms.start_until,
        };
        let command = OfferCommand::Publish(Box::new(new), now());
        let step = Step { id: id.to_string(), command: &command, codec: &acasa_domain::Plain, new: fresh };
        let outcome = self.offers.execute_step(step, &meta).await?;
        Ok(pb::PublishOfferResponse { offer_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn close_offer(&self, request: &Request<pb::CloseOfferRequest>) -> Result<u64, Status> {
        self.command_on(
            &self.offers,
            request,
            "offer_id",
            |r| &r.offer_id,
            STAFF,
            |r, v| validate::note(v, "reason", &r.reason).map(|reason| OfferCommand::Close(reason, now())),
        )
        .await
    }

    pub(crate) async fn reopen_offer(&self, request: &Request<pb::ReopenOfferRequest>) -> Result<u64, Status> {
        self.command_on(
            &self.offers,
            request,
            "offer_id",
            |r| &r.offer_id,
            STAFF,
            |_, _| Some(OfferCommand::Reopen(now())),
        )
        .await
    }

    // ------------------------------------------------------------ proposals
    /// The person's standing in this service's view of the registry, after
    /// waiting for `min_registry_position`.
    pub(crate) async fn person_fact(
        &self,
        person: Uuid,
        kind: crate::domain::Kind,
        min_registry_position: u64,
        deadline: Instant,
    ) -> Result<PersonFact, ApiError> {
        if min_registry_position > 0 {
            let registry = acasa_eventstore::stream_name_of("registry");
            self.positions
                .wait_for(crate::PEOPLE_PROJECTION, &registry, min_registry_position, deadline)
                .await
                .map_err(|e| ApiError::waiting(e, "min_registry_position"))?;
        }
        let row: Option<(i16, Option<Uuid>, bool, Vec<i16>)> = sqlx::query_as(
            "SELECT status, merged_into, programme_consent, categories FROM placements.people WHERE person_id = $1",
        )
        .bind(person)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => PersonFact::Unknown,
            Some((3, _, _, _)) => PersonFact::Erased,
            Some((2, survivor, _, _)) => PersonFact::Merged(survivor.unwrap_or_default()),
            Some((_, _, consent, categories)) => {
                PersonFact::Active { consent, category: categories.contains(&crate::category_of(kind)) }
            }
        })
    }

    /// The offer's places in the order to try ([`slot_order`]): the read
    /// model's free ones first, from a point that differs per placement.
    async fn slots(&self, offer: Uuid, places: u32, placement: Uuid) -> Result<Vec<u32>, ApiError> {
        let taken: Vec<i32> =
            sqlx::query_scalar("SELECT slot FROM placements.placements WHERE offer_id = $1 AND status NOT IN (3, 4)")
                .bind(offer)
                .fetch_all(&self.pool)
                .await?;
        let taken: Vec<u32> = taken.into_iter().filter_map(|s| u32::try_from(s).ok()).collect();
        Ok(slot_order(places, &taken, placement.as_u128()))
    }

    pub(crate) async fn propose(
        &self,
        principal: &Principal,
        req: &pb::ProposePlacementRequest,
        deadline: Instant,
    ) -> Result<pb::ProposePlacementResponse, ApiError> {
        let mut v = Violations::new();
        let meta = meta(principal, &mut v, req);
        let offer_id = validate::id(&mut v, "offer_id", &req.offer_id);
        let person = validate::id(&mut v, "person_id", &req.person_id);
        let (Some(meta), Some(offer_id), Some(person)) = (meta, offer_id, person) else { return Err(v.into()) };
        let (id, fresh) = self.placements.creation_id(&meta).await?;
        let (offer, version) = self.offers.load(&offer_id.to_string()).await?;
        let Some(new) = offer.offer.as_ref().filter(|_| version > 0) else {
            return Err(ApiError::NotFound(format!("no offer {offer_id}")));
        };
        // A retry of a proposal that was stored: the command loop answers
        // from its request record, whatever the slot.
        let replay = !fresh && self.placements.load(&id.to_string()).await?.1 > 0;
        let (host, _) = self.hosts.load(&new.host.to_string()).await?;
        let facts = ProposalFacts {
            offer_open: !offer.closed,
            host_active: host.exists() && !host.suspended,
            person: if replay {
                PersonFact::Active { consent: true, category: true }
            } else {
                self.person_fact(person, new.terms.kind, req.min_registry_position, deadline).await?
            },
        };
        let slots = if replay { vec![1] } else { self.slots(offer_id, new.places, id).await? };
        for slot in slots {
            let proposal = Proposal {
                id,
                person,
                offer: offer_id,
                host: new.host,
                slot,
                terms: new.terms.clone(),
                start_from: new.start_from,
                start_until: new.start_until,
            };
            let command = PlacementCommand::Propose(proposal, facts, now());
            let step = Step { id: id.to_string(), command: &command, codec: &acasa_domain::Plain, new: fresh };
            match self.placements.execute_step(step, &meta).await {
                Ok(o) => return Ok(pb::ProposePlacementResponse { placement_id: o.id, position: o.position }),
                // Taken meanwhile: nothing was written; the next place.
                Err(CommandError::Claimed { kind: OFFER_PLACE, .. }) => {}
                Err(CommandError::Claimed { kind: ACTIVE_PLACEMENT, owner }) => {
                    return Err(ApiError::Rejected {
                        kind: acasa_domain::RejectionKind::FailedPrecondition,
                        message: format!("the person already holds an active placement: {owner}"),
                        rule: Some("ONE_ACTIVE_PLACEMENT"),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Rejected {
            kind: acasa_domain::RejectionKind::FailedPrecondition,
            message: format!("every one of the offer's {} places is taken", new.places),
            rule: Some("OFFER_FULL"),
        })
    }

    // ------------------------------------------------------------ running
    /// The host confirms presence; an admin may record a confirmation the
    /// host gave on paper.
    pub(crate) async fn confirm_presence(&self, request: &Request<pb::ConfirmPresenceRequest>) -> Result<u64, Status> {
        let principal = Principal::authorized(request, &[Role::Host, Role::Admin])?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = validate::id(&mut v, "placement_id", &req.placement_id);
        let month = validate::month(&mut v, "month", req.month);
        let host = if principal.has(Role::Admin) {
            match id {
                Some(id) => {
                    let (p, _) = self.placements.load(&id.to_string()).await.map_err(ApiError::from)?;
                    p.proposal.map(|p| p.host).unwrap_or_default()
                }
                None => Uuid::nil(),
            }
        } else {
            caller_host(principal)?
        };
        // Another host's placement is not found (the domain's NotHost): a
        // host learns nothing of placements that are not its own.
        self.transition(
            request,
            |r| &r.placement_id,
            &[Role::Host, Role::Admin],
            |_, _| Some(PlacementCommand::ConfirmPresence { month: month?, host }),
        )
        .await
    }

    pub(crate) async fn submit_travel(
        &self,
        request: &Request<pb::SubmitTravelClaimRequest>,
    ) -> Result<pb::SubmitTravelClaimResponse, Status> {
        let principal = Principal::authorized(request, STAFF)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let claim = meta(principal, &mut v, req).map(|m| m.derived_id("travel-claim"));
        let position = self
            .transition(
                request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    let kind = validate::text(v, "kind", &r.kind, validate::SUBJECT_MAX);
                    let amount = validate::money(v, "amount", r.amount.as_ref(), false);
                    let receipt = validate::note(v, "receipt_reference", &r.receipt_reference);
                    Some(PlacementCommand::SubmitTravel {
                        claim: claim?,
                        kind: kind?,
                        amount: amount?,
                        receipt: receipt?,
                    })
                },
            )
            .await?;
        Ok(pb::SubmitTravelClaimResponse { claim_id: claim.unwrap_or_default().to_string(), position })
    }
}

/// `SignAgreement`'s command.
pub(crate) fn sign(r: &pb::SignAgreementRequest, v: &mut Violations) -> Option<PlacementCommand> {
    let signed_on = validate::date(v, "signed_on", r.signed_on.as_ref());
    let start_on = validate::date(v, "start_on", r.start_on.as_ref());
    let reference = validate::note(v, "reference", &r.reference);
    Some(PlacementCommand::SignAgreement { signed_on: signed_on?, start_on: start_on?, reference: reference? })
}

/// `RecordAllowancePayment`'s command.
pub(crate) fn pay(r: &pb::RecordAllowancePaymentRequest, v: &mut Violations) -> Option<PlacementCommand> {
    let month = validate::month(v, "month", r.month);
    let amount = validate::money(v, "amount", r.amount.as_ref(), false);
    let paid_on = validate::date(v, "paid_on", r.paid_on.as_ref());
    let reference = validate::note(v, "reference", &r.reference);
    Some(PlacementCommand::Pay { month: month?, amount: amount?, paid_on: paid_on?, reference: reference? })
}

/// `ApproveTravelClaim`'s command.
pub(crate) fn approve_travel(r: &pb::ApproveTravelClaimRequest, v: &mut Violations) -> Option<PlacementCommand> {
    let claim = validate::id(v, "claim_id", &r.claim_id);
    let amount = validate::money(v, "amount", r.amount.as_ref(), false);
    Some(PlacementCommand::ApproveTravel { claim: claim?, amount: amount? })
}

/// `RejectTravelClaim`'s command.
pub(crate) fn reject_travel(r: &pb::RejectTravelClaimRequest, v: &mut Violations) -> Option<PlacementCommand> {
    let claim = validate::id(v, "claim_id", &r.claim_id);
    let reason = validate::note(v, "reason", &r.reason);
    Some(PlacementCommand::RejectTravel { claim: claim?, reason: reason? })
}

/// `PayTravelClaim`'s command.
pub(crate) fn pay_travel(r: &pb::PayTravelClaimRequest, v: &mut Violations) -> Option<PlacementCommand> {
    let claim = validate::id(v, "claim_id", &r.claim_id);
    let paid_on = validate::date(v, "paid_on", r.paid_on.as_ref());
    let reference = validate::note(v, "reference", &r.reference);
    Some(PlacementCommand::PayTravel { claim: claim?, paid_on: paid_on?, reference: reference? })
}

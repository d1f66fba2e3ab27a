//! The grants' commands: validate the request into domain values, gather
//! the outside facts the aggregates decide on (a call's terms, a session's
//! schedule, the person's facts in this service's own view of the
//! registry), let the aggregates decide, and append through the command
//! loop — one atomic batch per command, its claims and request record
//! included.
//!
//! Several aggregates decide some commands together, in one batch: the
//! committee's approval (the call's `Commit` and the application's
//! `Approve`), closing and cancelling a grant (the application's event and
//! the call's `Release`), a day's register and a session's completion (every
//! trainee named), cancelling a session (the session and its trainees'
//! unenrolment).

use acasa_domain::{
    Aggregate, Codec, EventCodec, Plain, Rejection, RejectionKind, Violations,
    pair::{Either, Pair, PairCodec},
    slots::slot_order,
};
use acasa_eventstore::{CommandError, CommandMeta, GroupCommand, Outcome, Repository, Step};
use acasa_proto::{Idempotent, grants::v1 as pb};
use acasa_runtime::{ApiError, Principal, Role, request::meta_of};
use acasa_vault::DataKey;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;
use tonic::{Request, Status};
use uuid::Uuid;

use crate::{
    codec::{self, OfficialCodec},
    domain::{
        Audience, CALL_APPLICANT, CALL_TRAINING_PLACE, GRANTEE, ONE_GRANT_PER_PERSON, SESSION_CODE, SESSION_SEAT,
        Stamp,
        application::{Application, ApplicationCommand, ApplicationEvent, CallFacts, NewApplication},
        call::{Call, CallCommand},
        official::{Official, OfficialCommand, OfficialEvent},
        support::{Service, Source, SupportCommand},
        training::{
            CourseCommand, CourseFacts, NewCourse, NewSession, Session, SessionCommand, SessionEvent, SessionFacts,
        },
    },
    grpc::{COMMITTEE, FINANCE, GrantService, STAFF},
    validate::{self, Trainee},
};

type CallSide = Pair<Call, Application>;
type OfficialSide = Pair<Session, Official>;

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Today, as the programme's calendar counts it.
fn today() -> NaiveDate {
    now().date_naive()
}

fn rule(rule: &'static str, message: String) -> ApiError {
    ApiError::Rejected { kind: RejectionKind::FailedPrecondition, message, rule: Some(rule) }
}

fn not_found(what: &str, id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no {what} {id}"))
}

/// A command's caller, metadata and stamp.
struct Begun {
    meta: CommandMeta,
    stamp: Stamp,
}

/// Authorises the caller and reads the request's idempotency metadata;
/// `None` with violations recorded.
fn begin<R: Idempotent>(request: &Request<R>, roles: &[Role], v: &mut Violations) -> Result<Option<Begun>, Status> {
    let principal: &Principal = Principal::authorized(request, roles)?;
    Ok(meta_of(principal, v, request.get_ref()).map(|meta| {
        let stamp = Stamp::new(&meta.actor, now());
        Begun { meta, stamp }
    }))
}

fn finish(v: Violations) -> Result<(), Status> {
    v.into_result().map_err(|e| Status::from(ApiError::from(e)))
}

fn api<E: Rejection>(e: CommandError<E>) -> Status {
    ApiError::from(e).into()
}

fn plain<E: EventCodec>() -> &'static dyn Codec<E> {
    &Plain
}

impl GrantService {
    /// Runs `build`'s command on aggregate `id_of(request)` of `repo`
    /// (events with a plain codec), for callers with one of `roles`.
    async fn on<A, R>(
        &self,
        repo: &Repository<A>,
        request: &Request<R>,
        roles: &[Role],
        id: (&'static str, fn(&R) -> &str),
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<A::Command>,
    ) -> Result<Outcome<A>, Status>
    where
        A: Aggregate,
        A::Event: EventCodec,
        R: Idempotent,
    {
        let mut v = Violations::new();
        let begun = begin(request, roles, &mut v)?;
        let req = request.get_ref();
        let target = validate::id(&mut v, id.0, id.1(req));
        let (Some(begun), Some(target)) = (begun, target) else { return Err(ApiError::from(v).into()) };
        let command = build(req, begun.stamp, &mut v);
        let Some(command) = command else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        repo.execute(&target.to_string(), &command, &begun.meta).await.map_err(api)
    }

    /// A call's command.
    async fn on_call<R: Idempotent>(
        &self,
        request: &Request<R>,
        roles: &[Role],
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<CallCommand>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on(&self.calls, request, roles, ("call_id", id_of), |r, s, v| build(r, s, v).map(Either::First))
            .await?;
        Ok(outcome.position)
    }

    /// An application's command.
    async fn on_application<R: Idempotent>(
        &self,
        request: &Request<R>,
        roles: &[Role],
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<ApplicationCommand>,
    ) -> Result<Outcome<CallSide>, Status> {
        self.on(&self.calls, request, roles, ("application_id", id_of), |r, s, v| build(r, s, v).map(Either::Second))
            .await
    }

    /// The application's state (NOT_FOUND if none).
    async fn application(&self, id: Uuid) -> Result<Application, ApiError> {
        let (state, _) = self.calls.load_kind(Application::KIND, &id.to_string()).await?;
        let app = state.second();
        if !app.exists() {
            return Err(not_found("application", id));
        }
        Ok(app)
    }

    /// The call's state (NOT_FOUND if none).
    async fn call(&self, id: Uuid) -> Result<Call, ApiError> {
        let (state, _) = self.calls.load(&id.to_string()).await?;
        let call = state.first();
        if !call.exists() {
            return Err(not_found("call", id));
        }
        Ok(call)
    }

    /// What a trainee's command knows of a session (NOT_FOUND if none).
    async fn session_facts(&self, id: Uuid) -> Result<SessionFacts, ApiError> {
        let (state, _) = self.sessions.load(&id.to_string()).await?;
        state.first().facts().ok_or_else(|| not_found("session", id))
    }

    /// An official's data key (none once erased).
    async fn official_key(&self, id: Uuid) -> Result<Option<DataKey>, ApiError> {
        self.keys.get(id).await.map_err(vault_down)
    }

    // ------------------------------------------------------------ calls
    pub(crate) async fn open_call(
        &self,
        request: &Request<pb::OpenCallRequest>,
    ) -> Result<pb::OpenCallResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, COMMITTEE, &mut v)?;
        let terms = validate::call_terms(&mut v, "terms", request.get_ref().terms.as_ref());
        let (Some(begun), Some(terms)) = (begun, terms) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let (id, fresh) = self.calls.creation_id(&begun.meta).await.map_err(api)?;
        let command = Either::First(CallCommand::Open(Box::new(terms.with_id(id)), begun.stamp));
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.calls.execute_step(step, &begun.meta).await.map_err(api)?;
        Ok(pb::OpenCallResponse { call_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn close_call(&self, request: &Request<pb::CloseCallRequest>) -> Result<u64, Status> {
        self.on_call(
            request,
            COMMITTEE,
            |r| &r.call_id,
            |r, stamp, v| validate::reason(v, "reason", &r.reason).map(|reason| CallCommand::Close { reason, stamp }),
        )
        .await
    }

    pub(crate) async fn change_call_budget(
        &self,
        request: &Request<pb::ChangeCallBudgetRequest>,
    ) -> Result<u64, Status> {
        self.on_call(
            request,
            COMMITTEE,
            |r| &r.call_id,
            |r, stamp, v| {
                let budget = validate::money(v, "budget", r.budget.as_ref(), false);
                let reason = validate::reason(v, "reason", &r.reason);
                Some(CallCommand::ChangeBudget { budget: budget?, reason: reason?, stamp })
            },
        )
        .await
    }

    // ------------------------------------------------------------ courses
    pub(crate) async fn create_course(
        &self,
        request: &Request<pb::CreateCourseRequest>,
    ) -> Result<pb::CreateCourseResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let audience = validate::audience(&mut v, "audience", req.audience);
        let details = validate::course_details(&mut v, "details", req.details.as_ref());
        let (Some(begun), Some(audience), Some(details)) = (begun, audience, details) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let (id, fresh) = self.courses.creation_id(&begun.meta).await.map_err(api)?;
        let command = CourseCommand::Create(NewCourse { id, audience, details }, begun.stamp);
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.courses.execute_step(step, &begun.meta).await.map_err(api)?;
        Ok(pb::CreateCourseResponse { course_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn update_course(&self, request: &Request<pb::UpdateCourseRequest>) -> Result<u64, Status> {
        let outcome = self
            .on(&self.courses, request, STAFF, ("course_id", |r| &r.course_id), |r, stamp, v| {
                validate::course_details(v, "details", r.details.as_ref()).map(|d| CourseCommand::Update(d, stamp))
            })
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn retire_course(&self, request: &Request<pb::RetireCourseRequest>) -> Result<u64, Status> {
        let outcome = self
            .on(&self.courses, request, STAFF, ("course_id", |r| &r.course_id), |r, stamp, v| {
                validate::reason(v, "reason", &r.reason).map(|reason| CourseCommand::Retire { reason, stamp })
            })
            .await?;
        Ok(outcome.position)
    }

    // ------------------------------------------------------------ sessions
    pub(crate) async fn schedule_session(
        &self,
        request: &Request<pb::ScheduleSessionRequest>,
    ) -> Result<pb::ScheduleSessionResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let course = validate::id(&mut v, "course_id", &req.course_id);
        let code = validate::session_code(&mut v, "code", &req.code);
        let capacity = validate::capacity(&mut v, "capacity", req.capacity);
        let threshold =
            validate::threshold_override(&mut v, "completion_threshold_percent", req.completion_threshold_percent);
        let details = validate::session_details(&mut v, "details", req.details.as_ref());
        let (Some(begun), Some(course), Some(code), Some(capacity), Some(threshold), Some(details)) =
            (begun, course, code, capacity, threshold, details)
        else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let (state, _) = self.courses.load(&course.to_string()).await.map_err(ApiError::from)?;
        let (Some(audience), Some(course_details)) = (state.audience, state.details.as_ref()) else {
            return Err(not_found("course", course).into());
        };
        let facts =
            CourseFacts { audience, threshold_percent: course_details.threshold_percent, retired: state.retired };
        let (id, fresh) = self.sessions.creation_id(&begun.meta).await.map_err(api)?;
        let new = NewSession { id, course, code, capacity, threshold_percent: threshold, details };
        let command = Either::First(SessionCommand::Schedule(Box::new(new), facts, begun.stamp));
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.sessions.execute_step(step, &begun.meta).await.map_err(|e| match e {
            CommandError::Claimed { kind: SESSION_CODE, owner } => Status::from(ApiError::Duplicate {
                message: format!("the session code is in use by session {owner}"),
                existing_id: owner,
            }),
            e => api(e),
        })?;
        Ok(pb::ScheduleSessionResponse { session_id: outcome.id, position: outcome.position })
    }

    async fn on_session<R: Idempotent>(
        &self,
        request: &Request<R>,
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<SessionCommand>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on(&self.sessions, request, STAFF, ("session_id", id_of), |r, s, v| build(r, s, v).map(Either::First))
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn reschedule_session(
        &self,
        request: &Request<pb::RescheduleSessionRequest>,
    ) -> Result<u64, Status> {
        self.on_session(
            request,
            |r| &r.session_id,
            |r, stamp, v| {
                validate::session_details(v, "details", r.details.as_ref()).map(|details| SessionCommand::Reschedule {
                    details,
                    today: today(),
                    stamp,
                })
            },
        )
        .await
    }

    pub(crate) async fn change_session_capacity(
        &self,
        request: &Request<pb::ChangeSessionCapacityRequest>,
    ) -> Result<u64, Status> {
        self.on_session(
            request,
            |r| &r.session_id,
            |r, stamp, v| {
                validate::capacity(v, "capacity", r.capacity)
                    .map(|capacity| SessionCommand::ChangeCapacity { capacity, stamp })
            },
        )
        .await
    }

    /// Waits until the read model has every commit stored so far, so a
    /// roster read from it names every trainee.
    async fn caught_up(&self, deadline: Instant) -> Result<(), ApiError> {
        let last = self.calls.store().last_sequence().await?;
        let stream = acasa_eventstore::stream_name_of(crate::SERVICE);
        self.positions
            .wait_for(crate::PROJECTION, &stream, last, deadline)
            .await
            .map_err(|e| ApiError::waiting(e, "session_id"))?;
        Ok(())
    }

    /// The session's trainees still in training in it: the roster of the
    /// read model caught up with the whole log, each checked on its own
    /// aggregate (enrolled in this session now, not yet decided).
    async fn trainees(&self, facts: &SessionFacts, deadline: Instant) -> Result<Vec<Uuid>, ApiError> {
        self.caught_up(deadline).await?;
        let open = |e: Option<&crate::domain::training::Enrolment>| {
            e.is_some_and(|e| e.session == facts.id && e.finished.is_none())
        };
        let mut out = Vec::new();
        for (trainee, _) in crate::projection::roster(&self.pool, facts.id).await? {
            match (trainee, facts.audience) {
                (Trainee::Application(id), Audience::Entrepreneurs)
                    if open(self.application(id).await?.enrolment.as_ref()) =>
                {
                    out.push(id);
                }
                (Trainee::Official(id), Audience::Officials) => {
                    let codec = OfficialCodec::new(id, self.official_key(id).await?);
                    let pair = PairCodec { first: plain(), second: &codec };
                    let (state, _) = self.officials.load_kind_with(Official::KIND, &id.to_string(), &pair).await?;
                    if open(state.second().enrolments.get(&facts.id)) {
                        out.push(id);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Cancels a session and, in the same batch, unenrols its trainees.
    pub(crate) async fn cancel_session(
        &self,
        request: &Request<pb::CancelSessionRequest>,
        deadline: Instant,
    ) -> Result<u64, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let session = validate::id(&mut v, "session_id", &req.session_id);
        let reason = validate::reason(&mut v, "reason", &req.reason);
        let (Some(begun), Some(session), Some(reason)) = (begun, session, reason) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let mut facts = self.session_facts(session).await?;
        let trainees = if facts.cancelled { Vec::new() } else { self.trainees(&facts, deadline).await? };
        facts.cancelled = true;
        let (stamp, on) = (begun.stamp, today());
        let cancel = SessionCommand::Cancel { reason: reason.clone(), stamp: stamp.clone() };
        match facts.audience {
            Audience::Entrepreneurs => {
                let cancel = Either::First(cancel);
                let unenrol = Either::Second(ApplicationCommand::Unenrol { session: facts.clone(), reason, on, stamp });
                let mut steps = vec![Step { id: session.to_string(), command: &cancel, codec: plain(), new: false }];
                for a in &trainees {
                    steps.push(Step { id: a.to_string(), command: &unenrol, codec: plain(), new: false });
                }
                let outcomes = self.sessions.execute_all(&steps, &begun.meta).await.map_err(api)?;
                Ok(outcomes.iter().map(|o| o.position).max().unwrap_or_default())
            }
            Audience::Officials => {
                let cancel = Either::First(cancel);
                let unenrol = Either::Second(OfficialCommand::Unenrol { session: facts.clone(), reason, on, stamp });
                let mut codecs = vec![OfficialCodec::new(session, None)];
                let mut ids = vec![session];
                for o in &trainees {
                    codecs.push(OfficialCodec::new(*o, self.official_key(*o).await?));
                    ids.push(*o);
                }
                let pairs: Vec<PairCodec<'_, SessionEvent, OfficialEvent>> =
                    codecs.iter().map(|c| PairCodec { first: plain(), second: c }).collect();
                let steps: Vec<Step<'_, OfficialSide>> = ids
                    .iter()
                    .zip(&pairs)
                    .enumerate()
                    .map(|(i, (id, codec))| Step {
                        id: id.to_string(),
                        command: if i == 0 { &cancel } else { &unenrol },
                        codec,
                        new: false,
                    })
                    .collect();
                let outcomes = self.officials.execute_all(&steps, &begun.meta).await.map_err(api)?;
                Ok(outcomes.iter().map(|o| o.position).max().unwrap_or_default())
            }
        }
    }

    // ------------------------------------------------------------ officials
    /// Runs one official's command with the official's codec.
    async fn run_official(
        &self,
        id: Uuid,
        key: Option<DataKey>,
        command: OfficialCommand,
        meta: &CommandMeta,
        new: bool,
    ) -> Result<Outcome<OfficialSide>, CommandError<<OfficialSide as Aggregate>::Error>> {
        let codec = OfficialCodec::new(id, key);
        let pair = PairCodec { first: plain(), second: &codec };
        let command = Either::Second(command);
        self.officials.execute_step(Step { id: id.to_string(), command: &command, codec: &pair, new }, meta).await
    }

    pub(crate) async fn register_official(
        &self,
        request: &Request<pb::RegisterOfficialRequest>,
    ) -> Result<pb::RegisterOfficialResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let details = validate::official_details(&mut v, "details", request.get_ref().details.as_ref());
        let (Some(begun), Some(details)) = (begun, details) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let (id, fresh) = self.officials.creation_id(&begun.meta).await.map_err(api)?;
        let key = match self.official_key(id).await? {
            Some(key) => key,
            None => self.keys.create(id).await.map_err(vault_down)?,
        };
        let command = OfficialCommand::Register { id, details, stamp: begun.stamp };
        let outcome = self.run_official(id, Some(key), command, &begun.meta, fresh).await.map_err(api)?;
        Ok(pb::RegisterOfficialResponse { official_id: outcome.id, position: outcome.position })
    }

    /// An official's command built from the request, with the official's key.
    async fn on_official<R: Idempotent>(
        &self,
        request: &Request<R>,
        id_of: fn(&R) -> &str,
        roles: &[Role],
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<OfficialCommand>,
    ) -> Result<(Uuid, u64), Status> {
        let mut v = Violations::new();
        let begun = begin(request, roles, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "official_id", id_of(req));
        let (Some(begun), Some(id)) = (begun, id) else { return Err(ApiError::from(v).into()) };
        let Some(command) = build(req, begun.stamp, &mut v) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let key = self.official_key(id).await?;
        let outcome = self.run_official(id, key, command, &begun.meta, false).await.map_err(api)?;
        Ok((id, outcome.position))
    }

    pub(crate) async fn update_official(&self, request: &Request<pb::UpdateOfficialRequest>) -> Result<u64, Status> {
        let (_, position) = self
            .on_official(
                request,
                |r| &r.official_id,
                STAFF,
                |r, stamp, v| {
                    validate::official_details(v, "details", r.details.as_ref())
                        .map(|d| OfficialCommand::Update(d, stamp))
                },
            )
            .await?;
        Ok(position)
    }

    /// Records the erasure, then destroys the official's key: the sealed
    /// data in the log can no longer be read. A retry after a failure
    /// between the two replays the record and destroys the key again.
    pub(crate) async fn erase_official(&self, request: &Request<pb::EraseOfficialRequest>) -> Result<u64, Status> {
        let (id, position) = self
            .on_official(
                request,
                |r| &r.official_id,
                COMMITTEE,
                |r, stamp, v| {
                    validate::reason(v, "reason", &r.reason).map(|reason| OfficialCommand::Erase { reason, stamp })
                },
            )
            .await?;
        self.keys.destroy(id).await.map_err(vault_down)?;
        Ok(position)
    }

    // ------------------------------------------------------------ enrolment
    pub(crate) async fn enrol_in_session(
        &self,
        request: &Request<pb::EnrolInSessionRequest>,
    ) -> Result<pb::EnrolInSessionResponse, Status> {
        use pb::enrol_in_session_request::Trainee as T;
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let session = validate::id(&mut v, "session_id", &req.session_id);
        let trainee = validate::trainee(
            &mut v,
            match &req.trainee {
                Some(T::ApplicationId(a)) => Some(a.as_str()),
                _ => None,
            },
            match &req.trainee {
                Some(T::OfficialId(o)) => Some(o.as_str()),
                _ => None,
            },
        );
        let (Some(begun), Some(session), Some(trainee)) = (begun, session, trainee) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let facts = self.session_facts(session).await?;
        let held = crate::projection::held_seats(&self.pool, session).await.map_err(ApiError::from)?;
        let on = today();
        match trainee {
            Trainee::Application(id) => {
                let app = self.application(id).await?;
                // Seats lowest free first (not spread like places): the seat is
                // in the certificate's number, which should follow enrolment.
                let seats = slot_order(facts.capacity, &held, 0);
                let places = match (app.place, app.call, app.terms.as_ref()) {
                    (None, Some(call), Some(terms)) => {
                        let held =
                            crate::projection::held_training_places(&self.pool, call).await.map_err(ApiError::from)?;
                        slot_order(terms.training_places, &held, id.as_u128())
                    }
                    // Held already (or not an applicant: the application refuses).
                    _ => vec![1],
                };
                let (mut seat, mut place) = (0, 0);
                while let (Some(&s), Some(&p)) = (seats.get(seat), places.get(place)) {
                    let command = Either::Second(ApplicationCommand::Enrol {
                        session: facts.clone(),
                        seat: s,
                        place: p,
                        on,
                        stamp: begun.stamp.clone(),
                    });
                    let step = Step { id: id.to_string(), command: &command, codec: plain(), new: false };
                    match self.calls.execute_step(step, &begun.meta).await {
                        Ok(outcome) => {
                            let seat = self.seat_of(id, session).await?.unwrap_or(s);
                            return Ok(pb::EnrolInSessionResponse {
                                seat: codec::count(seat),
                                position: outcome.position,
                            });
                        }
                        Err(CommandError::Claimed { kind: SESSION_SEAT, .. }) => seat += 1,
                        Err(CommandError::Claimed { kind: CALL_TRAINING_PLACE, .. }) => place += 1,
                        Err(e) => return Err(api(e)),
                    }
                }
                if place >= places.len() {
                    return Err(rule(
                        "CALL_TRAINING_FULL",
                        format!("every one of the call's {} training places is taken", places.len()),
                    )
                    .into());
                }
                Err(session_full(facts.capacity).into())
            }
            Trainee::Official(id) => {
                let key = self.official_key(id).await?;
                for s in slot_order(facts.capacity, &held, 0) {
                    let command =
                        OfficialCommand::Enrol { session: facts.clone(), seat: s, on, stamp: begun.stamp.clone() };
                    match self.run_official(id, key.clone(), command, &begun.meta, false).await {
                        Ok(outcome) => {
                            let codec = OfficialCodec::new(id, key.clone());
                            let pair = PairCodec { first: plain(), second: &codec };
                            let (state, _) = self
                                .officials
                                .load_kind_with(Official::KIND, &id.to_string(), &pair)
                                .await
                                .map_err(ApiError::from)?;
                            let seat = state.second().enrolments.get(&session).map_or(s, |e| e.seat);
                            return Ok(pb::EnrolInSessionResponse {
                                seat: codec::count(seat),
                                position: outcome.position,
                            });
                        }
                        Err(CommandError::Claimed { kind: SESSION_SEAT, .. }) => {}
                        Err(e) => return Err(api(e)),
                    }
                }
                Err(session_full(facts.capacity).into())
            }
        }
    }

    /// The seat an application holds in `session` (a replayed enrolment
    /// answers the seat first taken).
    async fn seat_of(&self, application: Uuid, session: Uuid) -> Result<Option<u32>, ApiError> {
        let app = self.application(application).await?;
        Ok(app.enrolment.filter(|e| e.session == session).map(|e| e.seat))
    }

    pub(crate) async fn unenrol_from_session(
        &self,
        request: &Request<pb::UnenrolFromSessionRequest>,
    ) -> Result<u64, Status> {
        use pb::unenrol_from_session_request::Trainee as T;
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let session = validate::id(&mut v, "session_id", &req.session_id);
        let trainee = validate::trainee(
            &mut v,
            match &req.trainee {
                Some(T::ApplicationId(a)) => Some(a.as_str()),
                _ => None,
            },
            match &req.trainee {
                Some(T::OfficialId(o)) => Some(o.as_str()),
                _ => None,
            },
        );
        let reason = validate::reason(&mut v, "reason", &req.reason);
        let (Some(begun), Some(session), Some(trainee), Some(reason)) = (begun, session, trainee, reason) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let facts = self.session_facts(session).await?;
        let on = today();
        match trainee {
            Trainee::Application(id) => {
                let command =
                    Either::Second(ApplicationCommand::Unenrol { session: facts, reason, on, stamp: begun.stamp });
                let step = Step { id: id.to_string(), command: &command, codec: plain(), new: false };
                Ok(self.calls.execute_step(step, &begun.meta).await.map_err(api)?.position)
            }
            Trainee::Official(id) => {
                let key = self.official_key(id).await?;
                let command = OfficialCommand::Unenrol { session: facts, reason, on, stamp: begun.stamp };
                Ok(self.run_official(id, key, command, &begun.meta, false).await.map_err(api)?.position)
            }
        }
    }

    /// Runs one command per trainee of a session, all in one batch: a day's
    /// register, a session's completion.
    async fn on_trainees(
        &self,
        facts: &SessionFacts,
        meta: &CommandMeta,
        trainees: &[(Uuid, ApplicationCommand, OfficialCommand)],
    ) -> Result<Vec<TraineeOutcome>, Status> {
        match facts.audience {
            Audience::Entrepreneurs => {
                let commands: Vec<_> = trainees.iter().map(|(id, a, _)| (id, Either::Second(a.clone()))).collect();
                let steps: Vec<Step<'_, CallSide>> = commands
                    .iter()
                    .map(|(id, c)| Step { id: id.to_string(), command: c, codec: plain(), new: false })
                    .collect();
                let outcomes = self.calls.execute_all(&steps, meta).await.map_err(api)?;
                Ok(outcomes
                    .into_iter()
                    .map(|o| TraineeOutcome {
                        position: o.position,
                        completed: o
                            .events
                            .iter()
                            .any(|e| matches!(e, Either::Second(ApplicationEvent::TrainingCompleted { .. }))),
                        not_completed: o
                            .events
                            .iter()
                            .any(|e| matches!(e, Either::Second(ApplicationEvent::TrainingNotCompleted { .. }))),
                    })
                    .collect())
            }
            Audience::Officials => {
                let mut codecs = Vec::with_capacity(trainees.len());
                for (id, _, _) in trainees {
                    codecs.push(OfficialCodec::new(*id, self.official_key(*id).await?));
                }
                let pairs: Vec<PairCodec<'_, SessionEvent, OfficialEvent>> =
                    codecs.iter().map(|c| PairCodec { first: plain(), second: c }).collect();
                let commands: Vec<_> = trainees.iter().map(|(id, _, o)| (id, Either::Second(o.clone()))).collect();
                let steps: Vec<Step<'_, OfficialSide>> = commands
                    .iter()
                    .zip(&pairs)
                    .map(|((id, c), codec)| Step { id: id.to_string(), command: c, codec, new: false })
                    .collect();
                let outcomes = self.officials.execute_all(&steps, meta).await.map_err(api)?;
                Ok(outcomes
                    .into_iter()
                    .map(|o| TraineeOutcome {
                        position: o.position,
                        completed: o
                            .events
                            .iter()
                            .any(|e| matches!(e, Either::Second(OfficialEvent::TrainingCompleted { .. }))),
                        not_completed: o
                            .events
                            .iter()
                            .any(|e| matches!(e, Either::Second(OfficialEvent::TrainingNotCompleted { .. }))),
                    })
                    .collect())
            }
        }
    }

    pub(crate) async fn record_attendance(
        &self,
        request: &Request<pb::RecordAttendanceRequest>,
    ) -> Result<u64, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let session = validate::id(&mut v, "session_id", &req.session_id);
        let day = validate::date(&mut v, "day", req.day.as_ref());
        let register = validate::register(&mut v, &req.present_trainee_ids, &req.absent_trainee_ids);
        let (Some(begun), Some(session), Some(day), Some(register)) = (begun, session, day, register) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let facts = self.session_facts(session).await?;
        let today = today();
        let trainees: Vec<_> = register
            .into_iter()
            .map(|(id, present)| {
                let stamp = begun.stamp.clone();
                (
                    id,
                    ApplicationCommand::RecordAttendance {
                        session: facts.clone(),
                        day,
                        present,
                        today,
                        stamp: stamp.clone(),
                    },
                    OfficialCommand::RecordAttendance { session: facts.clone(), day, present, today, stamp },
                )
            })
            .collect();
        let outcomes = self.on_trainees(&facts, &begun.meta, &trainees).await?;
        Ok(outcomes.iter().map(|o| o.position).max().unwrap_or_default())
    }

    pub(crate) async fn complete_session(
        &self,
        request: &Request<pb::CompleteSessionRequest>,
        deadline: Instant,
    ) -> Result<pb::CompleteSessionResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let session = validate::id(&mut v, "session_id", &request.get_ref().session_id);
        let (Some(begun), Some(session)) = (begun, session) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let facts = self.session_facts(session).await?;
        let today = today();
        let trainees: Vec<_> = self
            .trainees(&facts, deadline)
            .await?
            .into_iter()
            .map(|id| {
                let stamp = begun.stamp.clone();
                (
                    id,
                    ApplicationCommand::CompleteTraining { session: facts.clone(), today, stamp: stamp.clone() },
                    OfficialCommand::CompleteTraining { session: facts.clone(), today, stamp },
                )
            })
            .collect();
        if trainees.is_empty() {
            return Err(rule("NOT_ENROLLED", "the session has no trainee to decide".into()).into());
        }
        let outcomes = self.on_trainees(&facts, &begun.meta, &trainees).await?;
        let count = |f: fn(&TraineeOutcome) -> bool| {
            codec::count(u32::try_from(outcomes.iter().filter(|o| f(o)).count()).unwrap_or(u32::MAX))
        };
        Ok(pb::CompleteSessionResponse {
            completed: count(|o| o.completed),
            not_completed: count(|o| o.not_completed),
            position: outcomes.iter().map(|o| o.position).max().unwrap_or_default(),
        })
    }

    // ------------------------------------------------------------ applications
    pub(crate) async fn apply(
        &self,
        request: &Request<pb::ApplyRequest>,
        deadline: Instant,
    ) -> Result<pb::ApplyResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let call = validate::id(&mut v, "call_id", &req.call_id);
        let person = validate::id(&mut v, "person_id", &req.person_id);
        let (Some(begun), Some(call_id), Some(person)) = (begun, call, person) else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let call = self.call(call_id).await?;
        let (Some(terms), closed) = (call.terms.clone(), call.closed) else {
            return Err(not_found("call", call_id).into());
        };
        let facts = self.person_facts(person, req.min_registry_position, deadline).await?;
        let (id, fresh) = self.calls.creation_id(&begun.meta).await.map_err(api)?;
        let command = Either::Second(ApplicationCommand::Apply {
            application: NewApplication { id, call: call_id, person, applied_on: today() },
            call: CallFacts { terms: Box::new(terms), closed },
            person: facts,
            stamp: begun.stamp,
        });
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.calls.execute_step(step, &begun.meta).await.map_err(|e| match e {
            CommandError::Claimed { kind: CALL_APPLICANT, owner } => Status::from(ApiError::Duplicate {
                message: format!("the person has applied to this call: application {owner}"),
                existing_id: owner,
            }),
            e => api(e),
        })?;
        let app = self.application(Uuid::parse_str(&outcome.id).unwrap_or(id)).await?;
        Ok(pb::ApplyResponse {
            application_id: outcome.id,
            eligible: app.ineligible.is_none(),
            failed_rule: app.ineligible.map(|r| r.name().to_owned()).unwrap_or_default(),
            position: outcome.position,
        })
    }

    /// The person's facts in this service's view of the registry, after
    /// waiting for `min_registry_position`.
    async fn person_facts(
        &self,
        person: Uuid,
        min_registry_position: u64,
        deadline: Instant,
    ) -> Result<crate::domain::eligibility::PersonFacts, ApiError> {
        if min_registry_position > 0 {
            let registry = acasa_eventstore::stream_name_of("registry");
            self.positions
                .wait_for(crate::PEOPLE_PROJECTION, &registry, min_registry_position, deadline)
                .await
                .map_err(|e| ApiError::waiting(e, "min_registry_position"))?;
        }
        Ok(crate::people::facts(&self.pool, person).await?)
    }

    pub(crate) async fn reassess_eligibility(
        &self,
        request: &Request<pb::ReassessEligibilityRequest>,
        deadline: Instant,
    ) -> Result<pb::ReassessEligibilityResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "application_id", &req.application_id);
        let (Some(begun), Some(id)) = (begun, id) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let app = self.application(id).await?;
        let person = app.person.unwrap_or_default();
        let facts = self.person_facts(person, req.min_registry_position, deadline).await?;
        let command = Either::Second(ApplicationCommand::Reassess { person: facts, on: today(), stamp: begun.stamp });
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: false };
        let outcome = self.calls.execute_step(step, &begun.meta).await.map_err(api)?;
        let app = self.application(id).await?;
        Ok(pb::ReassessEligibilityResponse {
            eligible: app.ineligible.is_none(),
            failed_rule: app.ineligible.map(|r| r.name().to_owned()).unwrap_or_default(),
            position: outcome.position,
        })
    }

    pub(crate) async fn withdraw_application(
        &self,
        request: &Request<pb::WithdrawApplicationRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    validate::reason(v, "reason", &r.reason)
                        .map(|reason| ApplicationCommand::Withdraw { reason, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn submit_business_plan(
        &self,
        request: &Request<pb::SubmitBusinessPlanRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    validate::plan(v, "plan", r.plan.as_ref()).map(|plan| ApplicationCommand::SubmitPlan(plan, stamp))
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn declare_conflict_of_interest(
        &self,
        request: &Request<pb::DeclareConflictOfInterestRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    validate::reason(v, "reason", &r.reason)
                        .map(|reason| ApplicationCommand::DeclareConflict { reason, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn score_application(
        &self,
        request: &Request<pb::ScoreApplicationRequest>,
    ) -> Result<pb::ScoreApplicationResponse, Status> {
        let evaluator = Principal::authorized(request, STAFF)?.subject.clone();
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    let scores = validate::scores(v, "scores", &r.scores);
                    let comment = validate::optional(v, "comment", &r.comment, 2000);
                    Some(ApplicationCommand::Score { scores: scores?, comment: comment?, stamp })
                },
            )
            .await?;
        let id = Uuid::parse_str(&outcome.id).unwrap_or_default();
        let app = self.application(id).await?;
        let weighted = match (app.terms.as_ref(), app.scores.get(&evaluator)) {
            (Some(terms), Some(scores)) => terms.evaluation.weighted(scores),
            _ => 0,
        };
        Ok(pb::ScoreApplicationResponse { weighted_score: codec::count(weighted), position: outcome.position })
    }

    pub(crate) async fn approve_grant(
        &self,
        request: &Request<pb::ApproveGrantRequest>,
    ) -> Result<pb::ApproveGrantResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, COMMITTEE, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "application_id", &req.application_id);
        let amount = validate::money(&mut v, "amount", req.amount.as_ref(), false);
        let reference = validate::reference(&mut v, "minutes_reference", &req.minutes_reference);
        let note = validate::optional(&mut v, "note", &req.note, 2000);
        let (Some(begun), Some(id), Some(amount), Some(reference), Some(note)) = (begun, id, amount, reference, note)
        else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let app = self.application(id).await?;
        let call = app.call.unwrap_or_default();
        let commit =
            Either::First(CallCommand::Commit { application: id, amount: amount.clone(), stamp: begun.stamp.clone() });
        let approve = Either::Second(ApplicationCommand::Approve { amount, reference, note, stamp: begun.stamp });
        // Approvals racing on one call are stored in groups (one batch's
        // round trip for all that queued meanwhile), each decided in turn on
        // the call as the earlier left it: see acasa_eventstore::Coalescer.
        let command = GroupCommand {
            steps: vec![(call.to_string(), commit, false), (id.to_string(), approve, false)],
            meta: begun.meta,
        };
        let outcomes = self.approvals.execute(&call.to_string(), command).await.map_err(|e| match e {
            CommandError::Claimed { kind: GRANTEE, owner } => Status::from(rule(
                ONE_GRANT_PER_PERSON,
                format!("the person already holds a grant: application {owner}"),
            )),
            e => api(e),
        })?;
        let remaining = self.call(call).await?;
        let currency = remaining.terms.as_ref().map(|t| t.budget.currency.clone()).unwrap_or_default();
        Ok(pb::ApproveGrantResponse {
            remaining: Some(codec::money(&crate::domain::Money::new(remaining.remaining(), &currency))),
            position: outcomes.iter().map(|o| o.position).max().unwrap_or_default(),
        })
    }

    pub(crate) async fn reject_application(
        &self,
        request: &Request<pb::RejectApplicationRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                COMMITTEE,
                |r| &r.application_id,
                |r, stamp, v| {
                    let reasons = validate::text(v, "reasons", &r.reasons, 2000);
                    let reference = validate::reference(v, "minutes_reference", &r.minutes_reference);
                    Some(ApplicationCommand::Reject { reasons: reasons?, reference: reference?, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    // ------------------------------------------------------------ in kind
    pub(crate) async fn order_item(
        &self,
        request: &Request<pb::OrderItemRequest>,
    ) -> Result<pb::OrderItemResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "application_id", &req.application_id);
        let Some(begun) = begun else { return Err(ApiError::from(v).into()) };
        let item_id = begun.meta.derived_id("item");
        let item = validate::procurement_item(&mut v, "item", req.item.as_ref(), item_id);
        let (Some(id), Some(item)) = (id, item) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let command = Either::Second(ApplicationCommand::Order(item, begun.stamp));
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: false };
        let outcome = self.calls.execute_step(step, &begun.meta).await.map_err(api)?;
        let app = self.application(id).await?;
        let approved = app.approved.clone().unwrap_or_else(|| crate::domain::Money::new(0, ""));
        Ok(pb::OrderItemResponse {
            item_id: item_id.to_string(),
            remaining: Some(codec::money(&approved.with(approved.minor - app.ordered()))),
            position: outcome.position,
        })
    }

    pub(crate) async fn cancel_order(&self, request: &Request<pb::CancelOrderRequest>) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    let item = validate::id(v, "item_id", &r.item_id);
                    let reason = validate::reason(v, "reason", &r.reason);
                    Some(ApplicationCommand::CancelOrder { item: item?, reason: reason?, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn record_delivery(&self, request: &Request<pb::RecordDeliveryRequest>) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    let item = validate::id(v, "item_id", &r.item_id);
                    let on = validate::past_date(v, "delivered_on", r.delivered_on.as_ref(), today());
                    let reference = validate::reference(v, "delivery_note_reference", &r.delivery_note_reference);
                    Some(ApplicationCommand::RecordDelivery { item: item?, on: on?, reference: reference?, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn record_supplier_payment(
        &self,
        request: &Request<pb::RecordSupplierPaymentRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                FINANCE,
                |r| &r.application_id,
                |r, stamp, v| {
                    let item = validate::id(v, "item_id", &r.item_id);
                    let on = validate::past_date(v, "paid_on", r.paid_on.as_ref(), today());
                    let reference = validate::reference(v, "payment_reference", &r.payment_reference);
                    Some(ApplicationCommand::RecordPayment { item: item?, on: on?, reference: reference?, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn hand_over_items(&self, request: &Request<pb::HandOverItemsRequest>) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    validate::handover(v, "handover", r.handover.as_ref())
                        .map(|h| ApplicationCommand::HandOver(h, stamp))
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn record_monitoring_visit(
        &self,
        request: &Request<pb::RecordMonitoringVisitRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_application(
                request,
                STAFF,
                |r| &r.application_id,
                |r, stamp, v| {
                    validate::visit(v, "visit", r.visit.as_ref())
                        .map(|visit| ApplicationCommand::RecordVisit(visit, stamp))
                },
            )
            .await?;
        Ok(outcome.position)
    }

    /// Closes a grant and gives what is unspent back to the call, in one
    /// batch. The release is computed from the application as loaded; the
    /// application refuses it if it changed meanwhile, and it is computed
    /// again.
    pub(crate) async fn close_grant(
        &self,
        request: &Request<pb::CloseGrantRequest>,
    ) -> Result<pb::CloseGrantResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "application_id", &req.application_id);
        let note = validate::optional(&mut v, "note", &req.note, 2000);
        let (Some(begun), Some(id), Some(note)) = (begun, id, note) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        for _ in 0..5 {
            let app = self.application(id).await?;
            let approved = app.approved.clone().unwrap_or_else(|| crate::domain::Money::new(0, ""));
            let unspent = approved.with(approved.minor - app.handed_over());
            let close = Either::Second(ApplicationCommand::Close {
                note: note.clone(),
                releasing: Some(unspent.minor),
                stamp: begun.stamp.clone(),
            });
            let release = Either::First(CallCommand::Release {
                application: id,
                amount: unspent.clone(),
                reason: "the grant was closed".into(),
                stamp: begun.stamp.clone(),
            });
            let call = app.call.unwrap_or_default().to_string();
            let mut steps = vec![Step { id: id.to_string(), command: &close, codec: plain(), new: false }];
            if unspent.minor > 0 {
                steps.push(Step { id: call, command: &release, codec: plain(), new: false });
            }
            match self.calls.execute_all(&steps, &begun.meta).await {
                Ok(outcomes) => {
                    let app = self.application(id).await?;
                    let approved = app.approved.clone().unwrap_or_else(|| crate::domain::Money::new(0, ""));
                    let spent = app.handed_over();
                    return Ok(pb::CloseGrantResponse {
                        spent: Some(codec::money(&approved.with(spent))),
                        released: Some(codec::money(&approved.with(approved.minor - spent))),
                        position: outcomes.iter().map(|o| o.position).max().unwrap_or_default(),
                    });
                }
                Err(CommandError::Rejected(Either::Second(
                    crate::domain::application::ApplicationError::ReleaseMismatch { .. },
                ))) => self.calls.evict_kind(Application::KIND, &id.to_string()),
                Err(e) => return Err(api(e)),
            }
        }
        Err(ApiError::Contention.into())
    }

    /// Cancels an approved grant with nothing ordered and gives its whole
    /// amount back to the call, in one batch.
    pub(crate) async fn cancel_grant(
        &self,
        request: &Request<pb::CancelGrantRequest>,
    ) -> Result<pb::CancelGrantResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let id = validate::id(&mut v, "application_id", &req.application_id);
        let reason = validate::reason(&mut v, "reason", &req.reason);
        let (Some(begun), Some(id), Some(reason)) = (begun, id, reason) else { return Err(ApiError::from(v).into()) };
        finish(v)?;
        let app = self.application(id).await?;
        let approved = app.approved.clone().unwrap_or_else(|| crate::domain::Money::new(0, ""));
        let cancel =
            Either::Second(ApplicationCommand::CancelGrant { reason: reason.clone(), stamp: begun.stamp.clone() });
        let release = Either::First(CallCommand::Release {
            application: id,
            amount: approved.clone(),
            reason: format!("the grant was cancelled: {reason}"),
            stamp: begun.stamp,
        });
        let call = app.call.unwrap_or_default().to_string();
        let mut steps = vec![Step { id: id.to_string(), command: &cancel, codec: plain(), new: false }];
        if approved.minor > 0 {
            steps.push(Step { id: call, command: &release, codec: plain(), new: false });
        }
        let outcomes = self.calls.execute_all(&steps, &begun.meta).await.map_err(api)?;
        Ok(pb::CancelGrantResponse {
            released: Some(codec::money(&approved)),
            position: outcomes.iter().map(|o| o.position).max().unwrap_or_default(),
        })
    }

    // ------------------------------------------------------------ support
    pub(crate) async fn record_support_service(
        &self,
        request: &Request<pb::RecordSupportServiceRequest>,
    ) -> Result<pb::RecordSupportServiceResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, STAFF, &mut v)?;
        let req = request.get_ref();
        let person = validate::id(&mut v, "person_id", &req.person_id);
        let kind = validate::support_kind(&mut v, "kind", req.kind);
        let provider = validate::provider(&mut v, req.provider.as_ref());
        let delivered_on = validate::past_date(&mut v, "delivered_on", req.delivered_on.as_ref(), today());
        let note = validate::optional(&mut v, "note", &req.note, 2000);
        let (Some(begun), Some(person), Some(kind), Some(provider), Some(delivered_on), Some(note)) =
            (begun, person, kind, provider, delivered_on, note)
        else {
            return Err(ApiError::from(v).into());
        };
        finish(v)?;
        let id = begun.meta.derived_id("support-service");
        let service = Service { id, kind, provider, delivered_on, note, source: Source::Recorded };
        let command = SupportCommand::Record { person, service, stamp: begun.stamp };
        let outcome = self.support.execute(&person.to_string(), &command, &begun.meta).await.map_err(api)?;
        Ok(pb::RecordSupportServiceResponse { service_id: id.to_string(), position: outcome.position })
    }

    pub(crate) async fn retract_support_service(
        &self,
        request: &Request<pb::RetractSupportServiceRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on(&self.support, request, STAFF, ("person_id", |r| &r.person_id), |r, stamp, v| {
                let service = validate::id(v, "service_id", &r.service_id);
                let reason = validate::reason(v, "reason", &r.reason);
                Some(SupportCommand::Retract { service: service?, reason: reason?, stamp })
            })
            .await?;
        Ok(outcome.position)
    }
}

/// What one trainee's part of a register or completion did.
struct TraineeOutcome {
    position: u64,
    completed: bool,
    not_completed: bool,
}

fn vault_down(e: acasa_vault::VaultError) -> ApiError {
    ApiError::Unavailable { what: "the officials' vault", detail: e.to_string() }
}

fn session_full(capacity: u32) -> ApiError {
    rule("SESSION_FULL", format!("every one of the session's {capacity} seats is taken"))
}

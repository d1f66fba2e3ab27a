-- The grants service's read models (projection grants.grants, from the
-- service's own stream ACASA_GRANTS). Amounts are minor units beside their
-- currency. Nested detail the queries only hand back (a call's terms, a
-- course's or session's details, a business plan) is kept as the protobuf
-- encoding of its acasa.grants.v1 message. Enum columns hold the API's enum
-- numbers. Personal data of officials (names, sex, role, contacts) is NULL
-- once they are erased; registry people's facts (district, sex, birth date)
-- are not copied here but joined from grants.people at query time.

-- Districts, organisations: compared folded (lower case, Romanian and common
-- Latin diacritics removed), as acasa_domain::formats::fold does.
CREATE FUNCTION grants.fold(s text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    RETURN lower(translate(s,
        'ĂÂÁÀÄÃÅăâáàäãåÎÍÌÏîíìïȘŞșşȚŢțţÉÈÊËéèêëÓÒÔÖÕóòôöõÚÙÛÜúùûüÇçÑñ',
        'aaaaaaaaaaaaaaiiiiiiiisssstttteeeeeeeeoooooooooouuuuuuuuccnn'));

-- Calls. terms: acasa.grants.v1.CallTerms as opened (its budget the first
-- one; budget_minor is the budget now).
CREATE TABLE grants.calls (
    call_id      uuid PRIMARY KEY,
    title        text NOT NULL,
    currency     text NOT NULL,
    budget_minor bigint NOT NULL,
    closes_on    date NOT NULL,
    closed       boolean NOT NULL DEFAULT false,
    terms        bytea NOT NULL,
    opened_at    timestamptz NOT NULL,
    opened_by    text NOT NULL,
    position     bigint NOT NULL
);
CREATE INDEX calls_newest ON grants.calls (opened_at DESC, call_id DESC);

-- What each approved grant committed on its call's budget, and what of it
-- was given back (closing under the amount, cancelling).
CREATE TABLE grants.commitments (
    application_id  uuid PRIMARY KEY,
    call_id         uuid NOT NULL,
    committed_minor bigint NOT NULL,
    released_minor  bigint NOT NULL DEFAULT 0,
    position        bigint NOT NULL
);
CREATE INDEX commitments_call ON grants.commitments (call_id);

-- Courses. audience: 1 entrepreneurs, 2 officials. details:
-- acasa.grants.v1.CourseDetails.
CREATE TABLE grants.courses (
    course_id uuid PRIMARY KEY,
    audience  smallint NOT NULL,
    title     text NOT NULL,
    details   bytea NOT NULL,
    retired   boolean NOT NULL DEFAULT false,
    position  bigint NOT NULL
);
CREATE INDEX courses_audience ON grants.courses (audience, course_id);

-- Sessions. details: acasa.grants.v1.SessionDetails; first_day and last_day
-- its first and last days, district_folded its venue's district folded.
CREATE TABLE grants.sessions (
    session_id        uuid PRIMARY KEY,
    course_id         uuid NOT NULL,
    audience          smallint NOT NULL,
    code              text NOT NULL,
    capacity          integer NOT NULL,
    threshold_percent integer NOT NULL,
    details           bytea NOT NULL,
    district_folded   text NOT NULL,
    first_day         date NOT NULL,
    last_day          date NOT NULL,
    cancelled         boolean NOT NULL DEFAULT false,
    position          bigint NOT NULL
);
CREATE INDEX sessions_soonest ON grants.sessions (first_day, session_id);
CREATE INDEX sessions_course ON grants.sessions (course_id);

-- A trainee's enrolment in a session: an application's (trainee_kind 1) or
-- an official's (2). One row per session and trainee: enrolling again in the
-- same session (after leaving it before its first day) replaces it. left:
-- unenrolled (or withdrawn, or the official erased, before the end). result:
-- the API's TrainingResult (1 in progress, 2 completed, 3 not completed).
CREATE TABLE grants.enrolments (
    session_id         uuid NOT NULL,
    trainee_id         uuid NOT NULL,
    trainee_kind       smallint NOT NULL,
    seat               integer NOT NULL,
    call_place         integer,
    present_days       date[] NOT NULL DEFAULT '{}',
    absent_days        date[] NOT NULL DEFAULT '{}',
    result             smallint NOT NULL DEFAULT 1,
    certificate_number text,
    days_attended      integer,
    left_session       boolean NOT NULL DEFAULT false,
    left_reason        text,
    enrolled_at        timestamptz NOT NULL,
    position           bigint NOT NULL,
    PRIMARY KEY (session_id, trainee_id)
);
CREATE INDEX enrolments_trainee ON grants.enrolments (trainee_id);

-- Officials. kind: the API's OfficialKind. The personal columns are NULL
-- once erased.
CREATE TABLE grants.officials (
    official_id         uuid PRIMARY KEY,
    kind                smallint NOT NULL,
    organisation        text NOT NULL,
    organisation_folded text NOT NULL,
    district            text NOT NULL,
    district_folded     text NOT NULL,
    given_name          text,
    family_name         text,
    sex                 smallint,
    role                text,
    email               text,
    phone               text,
    erased              boolean NOT NULL DEFAULT false,
    registered_at       timestamptz NOT NULL,
    position            bigint NOT NULL
);
CREATE INDEX officials_district ON grants.officials (district_folded, official_id);
CREATE INDEX officials_organisation ON grants.officials (organisation_folded, official_id);

-- Applications. status: the API's ApplicationStatus. terms:
-- acasa.grants.v1.GrantTerms (currency: its cap's); plan:
-- acasa.grants.v1.BusinessPlan. decision: 1 approved, 2 rejected.
-- The funnel's stage flags: reached_eligible (the last assessment found it
-- eligible), reached_trained, reached_plan (ever); approved_active (approved
-- and not cancelled; closed grants stay); equipment_delivered (something
-- handed over); operating_last and jobs_last (the last monitoring visit).
CREATE TABLE grants.applications (
    application_id      uuid PRIMARY KEY,
    call_id             uuid NOT NULL,
    person_id           uuid NOT NULL,
    applied_on          date NOT NULL,
    currency            text NOT NULL,
    terms               bytea NOT NULL,
    status              smallint NOT NULL DEFAULT 0,
    failed_rule         text,
    training_place      integer,
    certificate_number  text,
    plan                bytea,
    decision            smallint,
    decision_score      integer,
    approved_minor      bigint,
    minutes_reference   text,
    decision_reasons    text,
    decided_by          text,
    decided_at          timestamptz,
    released_minor      bigint,
    reached_eligible    boolean NOT NULL DEFAULT false,
    reached_trained     boolean NOT NULL DEFAULT false,
    reached_plan        boolean NOT NULL DEFAULT false,
    approved_active     boolean NOT NULL DEFAULT false,
    equipment_delivered boolean NOT NULL DEFAULT false,
    operating_last      boolean,
    jobs_last           integer,
    received_at         timestamptz NOT NULL,
    position            bigint NOT NULL
);
CREATE INDEX applications_call ON grants.applications (call_id, application_id);
CREATE INDEX applications_person ON grants.applications (person_id);
CREATE INDEX applications_places ON grants.applications (call_id) WHERE training_place IS NOT NULL;
CREATE INDEX applications_approved ON grants.applications (call_id) WHERE approved_active;

-- Evaluations: one row per evaluator (scores as keys and values, in key
-- order; empty when a conflict was declared before scoring).
CREATE TABLE grants.evaluations (
    application_id    uuid NOT NULL,
    evaluator         text NOT NULL,
    score_keys        text[] NOT NULL DEFAULT '{}',
    score_values      integer[] NOT NULL DEFAULT '{}',
    weighted_score    integer NOT NULL DEFAULT 0,
    comment           text NOT NULL DEFAULT '',
    conflict_declared boolean NOT NULL DEFAULT false,
    conflict_reason   text NOT NULL DEFAULT '',
    at                timestamptz NOT NULL,
    PRIMARY KEY (application_id, evaluator)
);

-- Items procured in kind. status: the API's ItemStatus.
CREATE TABLE grants.items (
    item_id            uuid PRIMARY KEY,
    application_id     uuid NOT NULL,
    call_id            uuid NOT NULL,
    description        text NOT NULL,
    supplier_name      text NOT NULL,
    supplier_idno      text NOT NULL,
    quantity           integer NOT NULL,
    unit_price_minor   bigint NOT NULL,
    currency           text NOT NULL,
    total_minor        bigint NOT NULL,
    status             smallint NOT NULL DEFAULT 1,
    delivered_on       date,
    delivery_note_ref  text,
    paid_minor         bigint,
    paid_on            date,
    payment_ref        text,
    handover_ref       text,
    position           bigint NOT NULL
);
CREATE INDEX items_application ON grants.items (application_id, position);
CREATE INDEX items_call ON grants.items (call_id);

-- Handover records.
CREATE TABLE grants.handovers (
    application_id uuid NOT NULL,
    reference      text NOT NULL,
    item_ids       uuid[] NOT NULL,
    handed_over_on date NOT NULL,
    location       text NOT NULL,
    note           text NOT NULL,
    position       bigint NOT NULL,
    PRIMARY KEY (application_id, reference)
);

-- Monitoring visits, in log order.
CREATE TABLE grants.visits (
    application_id uuid NOT NULL,
    position       bigint NOT NULL,
    visited_on     date NOT NULL,
    officer        text NOT NULL,
    operating      boolean NOT NULL,
    jobs_created   integer NOT NULL,
    findings       text NOT NULL,
    PRIMARY KEY (application_id, position)
);

-- Support services recorded on a person's support subject. kind: the API's
-- SupportKind; provider_kind: 1 staff, 2 partner (provider a partner id),
-- 3 another provider, named.
CREATE TABLE grants.support_services (
    service_id     uuid PRIMARY KEY,
    person_id      uuid NOT NULL,
    kind           smallint NOT NULL,
    provider_kind  smallint NOT NULL,
    provider       text NOT NULL,
    delivered_on   date NOT NULL,
    note           text NOT NULL,
    referral_id    uuid,
    retracted      boolean NOT NULL DEFAULT false,
    retract_reason text,
    recorded_by    text NOT NULL,
    recorded_at    timestamptz NOT NULL,
    position       bigint NOT NULL
);
CREATE INDEX support_latest ON grants.support_services (recorded_at DESC, service_id DESC);
CREATE INDEX support_person ON grants.support_services (person_id);
CREATE INDEX support_referral ON grants.support_services (referral_id) WHERE referral_id IS NOT NULL;

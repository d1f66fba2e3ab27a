-- The placements service: its read models (schema `placements`). It holds no
-- data keys: a person's sealed registry data is opened through the
-- registry's PersonDataService, and what the service keeps of it lives in
-- placements.people until the person's erasure.

CREATE SCHEMA IF NOT EXISTS placements;

-- Host institutions (projection placements.placements).
CREATE TABLE placements.hosts (
    host_id         uuid PRIMARY KEY,
    idno            text NOT NULL,
    kind            smallint NOT NULL,
    name            text NOT NULL,
    district        text NOT NULL,
    district_folded text NOT NULL,
    contact_name    text NOT NULL,
    contact_email   text NOT NULL,
    contact_phone   text NOT NULL,
    hosts           text[] NOT NULL,
    suspended       boolean NOT NULL DEFAULT false,
    position        bigint NOT NULL
);
CREATE INDEX hosts_district ON placements.hosts (district_folded, host_id);
CREATE INDEX hosts_fields ON placements.hosts USING gin (hosts);

-- Offers; `district_folded` is the host's, kept in step with it.
CREATE TABLE placements.offers (
    offer_id         uuid PRIMARY KEY,
    host_id          uuid NOT NULL,
    kind             smallint NOT NULL,
    subject          text NOT NULL,
    places           integer NOT NULL,
    places_taken     integer NOT NULL DEFAULT 0,
    term_months      integer NOT NULL,
    allowance_minor  bigint NOT NULL,
    currency         text NOT NULL,
    travel_cap_minor bigint NOT NULL,
    start_from       date NOT NULL,
    start_until      date NOT NULL,
    languages        text[] NOT NULL,
    closed           boolean NOT NULL DEFAULT false,
    district_folded  text NOT NULL,
    published_at     timestamptz NOT NULL,
    position         bigint NOT NULL
);
CREATE INDEX offers_host ON placements.offers (host_id, offer_id);
CREATE INDEX offers_kind ON placements.offers (kind, offer_id);

-- Placements. status: 1 proposed, 2 accepted, 3 declined, 4 withdrawn,
-- 5 signed, 6 started, 7 completed, 8 ended early. Outcomes: the API's
-- OutcomeKind numbers.
CREATE TABLE placements.placements (
    placement_id       uuid PRIMARY KEY,
    person_id          uuid NOT NULL,
    offer_id           uuid NOT NULL,
    host_id            uuid NOT NULL,
    slot               integer NOT NULL,
    kind               smallint NOT NULL,
    status             smallint NOT NULL,
    term_months        integer NOT NULL,
    allowance_minor    bigint NOT NULL,
    currency           text NOT NULL,
    travel_cap_minor   bigint NOT NULL,
    start_from         date NOT NULL,
    start_until        date NOT NULL,
    signed_on          date,
    start_on           date,
    agreement_ref      text,
    started_on         date,
    ended_on           date,
    end_reason         text,
    outcome_completion smallint,
    outcome_completion_note text,
    outcome_follow_up  smallint,
    outcome_follow_up_note text,
    follow_up_due_on   date,
    follow_up_overdue  boolean NOT NULL DEFAULT false,
    district_folded    text NOT NULL,
    proposed_at        timestamptz NOT NULL,
    position           bigint NOT NULL
);
CREATE INDEX placements_host ON placements.placements (host_id, status, placement_id);
CREATE INDEX placements_status ON placements.placements (status, kind, placement_id);
CREATE INDEX placements_person ON placements.placements (person_id);
-- The deadline worker's follow-up sweep.
CREATE INDEX placements_follow_up ON placements.placements (follow_up_due_on)
    WHERE outcome_follow_up IS NULL AND NOT follow_up_overdue AND follow_up_due_on IS NOT NULL;

-- The allowance months that fell due, and their payment.
CREATE TABLE placements.months (
    placement_id uuid NOT NULL,
    month        integer NOT NULL,
    due_minor    bigint NOT NULL,
    currency     text NOT NULL,
    due_on       date NOT NULL,
    present      boolean NOT NULL DEFAULT false,
    paid_minor   bigint,
    paid_on      date,
    payment_ref  text,
    host_id      uuid NOT NULL,
    PRIMARY KEY (placement_id, month)
);
-- The payment list: unpaid months, oldest due first.
CREATE INDEX months_unpaid ON placements.months (due_on, placement_id, month) WHERE paid_minor IS NULL;

-- Travel claims.
CREATE TABLE placements.travel_claims (
    claim_id         uuid PRIMARY KEY,
    placement_id     uuid NOT NULL,
    kind             text NOT NULL,
    requested_minor  bigint NOT NULL,
    currency         text NOT NULL,
    receipt_ref      text NOT NULL,
    approved_minor   bigint,
    rejected         boolean NOT NULL DEFAULT false,
    reject_reason    text,
    paid_minor       bigint,
    paid_on          date,
    payment_ref      text,
    position         bigint NOT NULL
);
CREATE INDEX travel_claims_placement ON placements.travel_claims (placement_id, position);

-- This service's view of the registry (projection placements.people, from
-- stream ACASA_REGISTRY). status: 1 active, 2 merged, 3 erased. categories
-- and interests: the registry API's enum numbers. The personal columns are
-- opened through the registry and set NULL when the person is erased.
CREATE TABLE placements.people (
    person_id         uuid PRIMARY KEY,
    status            smallint NOT NULL DEFAULT 1,
    merged_into       uuid,
    categories        smallint[] NOT NULL DEFAULT '{}',
    interests         smallint[] NOT NULL DEFAULT '{}',
    programme_consent boolean NOT NULL DEFAULT false,
    given_name        text,
    family_name       text,
    email             text,
    phone             text,
    languages         text[],
    profession        text,
    scientific_field  text,
    education_fields  text[],
    skills            text[],
    position          bigint NOT NULL DEFAULT 0
);
CREATE INDEX people_candidates ON placements.people USING gin (categories) WHERE status = 1 AND programme_consent;

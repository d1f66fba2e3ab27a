-- The referrals service: its read models (schema `referrals`) and its
-- per-person data keys (schema `referrals_vault`, written by the referrals
-- service only).

CREATE SCHEMA IF NOT EXISTS referrals;
CREATE SCHEMA IF NOT EXISTS referrals_vault;

-- One data key per person who was ever referred, wrapped by the master key.
-- It seals the profile the person agreed to share. Erasure in the registry
-- (seen through referrals.consents' projection) deletes the row and vacuums.
CREATE TABLE referrals_vault.data_keys (
    subject_id    uuid PRIMARY KEY,
    wrapped       bytea NOT NULL,
    master_key_id smallint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1);

-- Partner organisations (projection referrals.referrals).
CREATE TABLE referrals.partners (
    partner_id       uuid PRIMARY KEY,
    kind             smallint NOT NULL,
    name             text NOT NULL,
    idno             text NOT NULL,
    districts        text[] NOT NULL,
    districts_folded text[] NOT NULL,
    contact          bytea NOT NULL,
    services         bytea NOT NULL,
    service_kinds    smallint[] NOT NULL,
    response_time_ms bigint NOT NULL,
    suspended        boolean NOT NULL DEFAULT false,
    registered_at    timestamptz NOT NULL,
    position         bigint NOT NULL
);
CREATE INDEX partners_districts ON referrals.partners USING gin (districts_folded);
CREATE INDEX partners_services ON referrals.partners USING gin (service_kinds);

-- Referrals (projection referrals.referrals). `profile_sealed` is the shared
-- profile as sealed in the log: opened at read time with the person's key,
-- only while consent holds; NULL once the person is erased.
CREATE TABLE referrals.referrals (
    referral_id        uuid PRIMARY KEY,
    person_id          uuid NOT NULL,
    partner_id         uuid NOT NULL,
    partner_kind       smallint NOT NULL,
    service            smallint NOT NULL,
    requested_amount   bigint,
    requested_currency text,
    district           text NOT NULL,
    district_folded    text NOT NULL,
    referrer_staff     text,
    referrer_partner   uuid,
    status             smallint NOT NULL,
    created_at         timestamptz NOT NULL,
    due_at             timestamptz NOT NULL,
    answered_at        timestamptz,
    accepted_at        timestamptz,
    sla_breached_at    timestamptz,
    progress           smallint NOT NULL DEFAULT 0,
    outcome            bytea,
    outcome_kind       smallint NOT NULL DEFAULT 0,
    disbursed_amount   bigint,
    disbursed_currency text,
    decline_reason     smallint NOT NULL DEFAULT 0,
    withdraw_reason    smallint NOT NULL DEFAULT 0,
    re_referred_from   uuid,
    re_referred_to     uuid,
    closed_at          timestamptz,
    profile_sealed     bytea,
    position           bigint NOT NULL
) WITH (fillfactor = 80);
-- The inbox: open referrals of a partner by due time.
CREATE INDEX referrals_inbox ON referrals.referrals (partner_id, due_at, referral_id) WHERE status IN (1, 2, 3);
-- The deadline worker: unanswered, unbreached referrals by due time.
CREATE INDEX referrals_due ON referrals.referrals (due_at) WHERE status = 1 AND sla_breached_at IS NULL;
CREATE INDEX referrals_breaches ON referrals.referrals (sla_breached_at DESC, referral_id) WHERE sla_breached_at IS NOT NULL;
CREATE INDEX referrals_person ON referrals.referrals (person_id);
CREATE INDEX referrals_referrer ON referrals.referrals (referrer_partner) WHERE referrer_partner IS NOT NULL;

-- This service's view of the registry (projection referrals.consents, from
-- the registry's stream): who exists, and consent to share with partners.
CREATE TABLE referrals.people (
    person_id   uuid PRIMARY KEY,
    status      smallint NOT NULL, -- 1 active, 2 merged, 3 erased
    merged_into uuid
);
CREATE TABLE referrals.consents (
    person_id  uuid NOT NULL,
    partner_id uuid NOT NULL,
    given      boolean NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (person_id, partner_id)
);

-- The feed publisher's routing of referral events to partners (projection
-- referrals.feed): its own table, so it never depends on another
-- projection's progress.
CREATE TABLE referrals.feed_routes (
    referral_id uuid PRIMARY KEY,
    partner_id  uuid NOT NULL
);

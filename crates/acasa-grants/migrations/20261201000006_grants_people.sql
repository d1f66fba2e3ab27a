-- This service's views of other services' logs: the registry's people
-- (projection grants.people, from stream ACASA_REGISTRY) and the referral
-- system's outcomes that count as start-up support (projection
-- grants.referrals, from stream ACASA_REFERRALS). Never the other
-- services' tables.

-- The eligibility facts of the registry's people. status: 1 active,
-- 2 merged, 3 erased. categories: acasa.registry.v1.Category values; sex:
-- an acasa.registry.v1.Sex value (NULL: not stated). birth_date, sex,
-- district and locality are opened by the registry's PersonDataService
-- (purpose eligibility); district is the home district (the return
-- district is sealed and not opened for other services), district_folded
-- it folded as acasa_domain::formats::fold folds; rural is the locality's
-- classification (crate::localities; NULL: not known). The person's erasure sets
-- every personal column NULL (categories empty, consent false).
CREATE TABLE grants.people (
    person_id         uuid PRIMARY KEY,
    status            smallint NOT NULL DEFAULT 1,
    merged_into       uuid,
    programme_consent boolean NOT NULL DEFAULT false,
    categories        smallint[] NOT NULL DEFAULT '{}',
    birth_date        date,
    sex               smallint,
    district          text,
    district_folded   text,
    locality          text,
    rural             boolean,
    position          bigint NOT NULL DEFAULT 0
);
CREATE INDEX people_district ON grants.people (district_folded) WHERE status = 1;

-- The referrals as sent (from ReferralCreated): whose, to which partner,
-- for what service (acasa.partner.v1.ServiceKind value) — what an outcome,
-- which names none of them, is recorded with. No free text.
CREATE TABLE grants.referrals (
    referral_id uuid PRIMARY KEY,
    person_id   uuid NOT NULL,
    partner_id  uuid NOT NULL,
    service     smallint NOT NULL,
    position    bigint NOT NULL
);

-- One row per referral whose outcome counts as a start-up support service:
-- kind is an acasa.grants.v1.SupportKind value, delivered_on the outcome's
-- day (UTC), recorded_at when the partner recorded it.
CREATE TABLE grants.referral_support (
    referral_id  uuid PRIMARY KEY,
    person_id    uuid NOT NULL,
    kind         smallint NOT NULL,
    partner_id   uuid NOT NULL,
    delivered_on date NOT NULL,
    recorded_at  timestamptz NOT NULL,
    position     bigint NOT NULL
);
CREATE INDEX referral_support_person ON grants.referral_support (person_id, delivered_on);

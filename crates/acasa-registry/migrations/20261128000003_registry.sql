-- The registry's read model (schema `registry`, built by projection
-- `registry.people`) and its vault of personal data keys (schema
-- `registry_vault`, written by the registry service only; never part of a
-- read model, never replicated into another service).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SCHEMA IF NOT EXISTS registry;
CREATE SCHEMA IF NOT EXISTS registry_vault;

-- One data key per person, wrapped by the master key (configuration). Erasure
-- deletes the row and vacuums the table; autovacuum is told to act on every
-- dead row as a backstop.
CREATE TABLE registry_vault.data_keys (
    subject_id    uuid PRIMARY KEY,
    wrapped       bytea NOT NULL,
    master_key_id smallint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1);

-- One row per person. Personal columns are NULL once the person is erased.
CREATE TABLE registry.people (
    person_id        uuid PRIMARY KEY,
    status           text NOT NULL CHECK (status IN ('active', 'merged', 'erased')),
    merged_into      uuid,
    categories       int[] NOT NULL,
    country          text NOT NULL,
    interests        int[] NOT NULL DEFAULT '{}',
    programme_consent boolean NOT NULL DEFAULT false,
    returned         boolean NOT NULL DEFAULT false,
    -- Personal (sealed in the log):
    given_name       text,
    family_name      text,
    name_key         text,      -- folded "family given" for search and duplicate detection
    birth_date       date,
    sex              int,
    idnp             text,
    email            text,
    phone            text,
    home_district    text,
    district_key     text,      -- folded district
    home_locality    text,
    languages        text[],
    education        bytea,     -- length-delimited acasa.registry.v1.Education messages
    profession       text,
    profession_key   text,
    scientific_field text,
    field_key        text,      -- folded scientific field and fields of study
    skills           text[],
    skills_key       text[],    -- folded skills
    return_date      date,
    return_district  text,
    return_locality  text,
    -- Bookkeeping:
    registered_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint NOT NULL
) WITH (fillfactor = 70); -- room for HOT updates (contacts, consent, timestamps touch no index)

-- GIN pending lists are scanned by every query until cleaned up: keep them
-- small (256 kB) so searches stay fast right after a burst of registrations.
CREATE INDEX people_country ON registry.people (country, person_id);
CREATE INDEX people_categories ON registry.people USING gin (categories) WITH (gin_pending_list_limit = 256);
CREATE INDEX people_district ON registry.people (district_key, person_id);
CREATE INDEX people_name_trgm ON registry.people USING gin (name_key gin_trgm_ops) WITH (gin_pending_list_limit = 256);
CREATE INDEX people_field_trgm ON registry.people USING gin (field_key gin_trgm_ops) WITH (gin_pending_list_limit = 256);
CREATE INDEX people_profession_trgm ON registry.people USING gin (profession_key gin_trgm_ops) WITH (gin_pending_list_limit = 256);
CREATE INDEX people_skills ON registry.people USING gin (skills_key) WITH (gin_pending_list_limit = 256);
CREATE INDEX people_duplicates ON registry.people (name_key, birth_date) WHERE status = 'active';

-- Every consent given or withdrawn, in order (no personal data: purpose,
-- partner organisation, channel, time, the recording caseworker).
CREATE TABLE registry.consent_history (
    person_id   uuid NOT NULL,
    position    bigint NOT NULL,
    seq         int NOT NULL,
    purpose     int NOT NULL,
    partner_id  uuid,
    given       boolean NOT NULL,
    channel     int NOT NULL,
    at          timestamptz NOT NULL,
    recorded_by text NOT NULL,
    PRIMARY KEY (person_id, position, seq)
);

-- Current consent per purpose and partner.
CREATE TABLE registry.consents (
    person_id  uuid NOT NULL,
    purpose    int NOT NULL,
    partner_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    given      boolean NOT NULL,
    channel    int NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (person_id, purpose, partner_id)
);

-- Pairs of people with the same folded names and birth date (person_id < other_id).
CREATE TABLE registry.duplicate_flags (
    person_id uuid NOT NULL,
    other_id  uuid NOT NULL,
    raised_at timestamptz NOT NULL,
    status    text NOT NULL CHECK (status IN ('open', 'dismissed', 'merged', 'erased')),
    PRIMARY KEY (person_id, other_id)
);
CREATE INDEX duplicate_flags_open ON registry.duplicate_flags (raised_at, person_id, other_id) WHERE status = 'open';
CREATE INDEX duplicate_flags_other ON registry.duplicate_flags (other_id);

-- Candidate lists: the few active people who consented to take part.
CREATE INDEX people_candidates ON registry.people (person_id) WHERE status = 'active' AND programme_consent;

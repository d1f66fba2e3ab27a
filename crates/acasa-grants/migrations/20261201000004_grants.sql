-- The grants service: its read models (schema `grants`) and its officials'
-- data keys (schema `grants_vault`, written by the grants service only).
-- The read models' tables follow in the next migrations.

CREATE SCHEMA IF NOT EXISTS grants;
CREATE SCHEMA IF NOT EXISTS grants_vault;

-- One data key per official, wrapped by the master key. It seals the
-- official's names, sex, role and contacts in the log. `EraseOfficial`
-- leaves a tombstone (`wrapped` NULL): no key is made for them again.
CREATE TABLE grants_vault.data_keys (
    subject_id    uuid PRIMARY KEY,
    wrapped       bytea,
    master_key_id smallint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1);

-- The demo service's read model (schema `demo`, owned by the demo service).
CREATE SCHEMA demo;

CREATE TABLE demo.counters (
    counter_id  uuid PRIMARY KEY,
    name        text NOT NULL,
    max_value   bigint NOT NULL,
    value       bigint NOT NULL,
    increments  bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint NOT NULL
);

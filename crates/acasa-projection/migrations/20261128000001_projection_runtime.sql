-- The projection runtime's own tables: one checkpoint per projection (the last
-- applied stream sequence, updated in the same transaction as the read model)
-- and the commits recorded as poison.
CREATE SCHEMA projection;

CREATE TABLE projection.checkpoints (
    name        text PRIMARY KEY,
    position    bigint NOT NULL CHECK (position >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection.poison (
    name        text NOT NULL,
    sequence    bigint NOT NULL,
    subject     text NOT NULL,
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, sequence)
);

-- Campaigns' audience and outbox.
--
-- content.audience (projection content.audience, from the registry's stream
-- ACASA_REGISTRY): who may be sent information campaigns — country of
-- residence (in clear in the registry's events), the languages they read
-- (opened by the registry's PersonDataService for the purpose campaigns),
-- their information-campaign consent, merge and erasure. Their contacts are
-- kept only as the registry's sealed value (contacts_sealed, encrypted with
-- the person's key, which never leaves the registry): the sender has them
-- opened at the moment it sends, so an erasure holds at once, and nothing
-- readable is kept here. Erasure empties languages and the sealed value.
CREATE TABLE content.audience (
    person_id       uuid PRIMARY KEY,
    country         text,
    languages       text[] NOT NULL DEFAULT '{}',
    consent         boolean NOT NULL DEFAULT false,
    contacts_event  text,
    contacts_sealed bytea,
    status          smallint NOT NULL DEFAULT 1, -- 1 active, 2 merged, 3 erased
    position        bigint NOT NULL DEFAULT 0
);
CREATE INDEX audience_reachable ON content.audience (country) WHERE consent AND status = 1;

-- The outbox (projection content.content, from each CampaignBatchRecorded):
-- one row per campaign and recipient, by person id only — never an
-- address. status: 1 pending, 2 sent, 3 not sent: consent withdrawn before
-- the send, 4 not sent: erased, 5 failed (refused, or no address for the
-- channel), 6 uncertain (recorded sent, then the connection broke before
-- the server's answer: never sent again). The sending state is the outbox's own, not
-- derived from events: `acasa rebuild content.content` leaves this table as it is (and
-- re-inserting a recorded batch's rows changes nothing).
CREATE TABLE content.deliveries (
    campaign_id     uuid NOT NULL,
    person_id       uuid NOT NULL,
    locale          text NOT NULL,
    country         text NOT NULL,
    status          smallint NOT NULL DEFAULT 1,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    sent_at         timestamptz,
    error           text,
    PRIMARY KEY (campaign_id, person_id)
);
CREATE INDEX deliveries_pending ON content.deliveries (next_attempt_at) WHERE status = 1;
CREATE INDEX deliveries_person ON content.deliveries (person_id);

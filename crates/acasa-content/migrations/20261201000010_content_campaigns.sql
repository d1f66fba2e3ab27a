-- Information campaigns (projection content.content). target: the
-- protobuf encoding of acasa.content.v1.CampaignTarget; reach: the
-- recipients recorded per language ({"ro": 120, …}). Recipients are
-- registry person ids only: no contact detail is kept here.
CREATE TABLE content.campaigns (
    campaign_id   uuid PRIMARY KEY,
    name          text NOT NULL,
    target        bytea NOT NULL,
    state         smallint NOT NULL,
    send_at       timestamptz,
    reach         jsonb NOT NULL DEFAULT '{}',
    cancel_reason text,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    position      bigint NOT NULL
);
CREATE INDEX campaigns_state ON content.campaigns (state, campaign_id DESC);

-- What a campaign sends per language: acasa.content.v1.CampaignContent.
CREATE TABLE content.campaign_contents (
    campaign_id uuid NOT NULL,
    locale      text NOT NULL,
    content     bytea NOT NULL,
    PRIMARY KEY (campaign_id, locale)
);

-- The content service's read models (schema `content`, projection
-- content.content from the service's own stream ACASA_CONTENT). Enum
-- columns hold the API's enum numbers (acasa.content.v1). Texts are stored
-- as written; `published` also holds each live version rendered safely
-- (body_html, body_text) and its text-search vector.

CREATE SCHEMA IF NOT EXISTS content;

-- Articles. source_revision: the source version's current revision (0
-- before the first one): a translation in line with an older one is stale.
CREATE TABLE content.articles (
    article_id      uuid PRIMARY KEY,
    slug            text NOT NULL UNIQUE,
    topic           smallint NOT NULL,
    countries       text[] NOT NULL,
    source_locale   text,
    source_revision integer NOT NULL DEFAULT 0,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    position        bigint NOT NULL
);
CREATE INDEX articles_topic ON content.articles (topic, article_id);

-- Every revision of every version, as written.
CREATE TABLE content.article_revisions (
    article_id  uuid NOT NULL,
    locale      text NOT NULL,
    revision    integer NOT NULL,
    author      text NOT NULL,
    written_at  timestamptz NOT NULL,
    translates  integer,
    title       text NOT NULL,
    summary     text NOT NULL,
    body        text NOT NULL,
    PRIMARY KEY (article_id, locale, revision)
);

-- One row per language version: its workflow.
CREATE TABLE content.article_versions (
    article_id        uuid NOT NULL,
    locale            text NOT NULL,
    state             smallint NOT NULL,
    current_revision  integer NOT NULL,
    approved_revision integer,
    approved_by       text,
    live_revision     integer,
    live_since        timestamptz,
    publish_at        timestamptz,
    expire_at         timestamptz,
    in_line_with      integer,
    PRIMARY KEY (article_id, locale)
);
CREATE INDEX article_versions_locale ON content.article_versions (locale, state);
-- The deadline worker's candidates.
CREATE INDEX article_versions_publish_at ON content.article_versions (publish_at) WHERE publish_at IS NOT NULL;
CREATE INDEX article_versions_expire_at ON content.article_versions (expire_at) WHERE expire_at IS NOT NULL;

-- What readers get: one row per live version (published_at ≤ now and
-- before expire_at is checked at read time, so nothing expired is served
-- even before the deadline worker records it).
CREATE TABLE content.published (
    article_id   uuid NOT NULL,
    locale       text NOT NULL,
    slug         text NOT NULL,
    topic        smallint NOT NULL,
    countries    text[] NOT NULL,
    revision     integer NOT NULL,
    title        text NOT NULL,
    summary      text NOT NULL,
    body_html    text NOT NULL,
    body_text    text NOT NULL,
    published_at timestamptz NOT NULL,
    expire_at    timestamptz,
    ts_config    regconfig NOT NULL,
    tsv          tsvector NOT NULL,
    PRIMARY KEY (article_id, locale)
);
CREATE INDEX published_slug ON content.published (slug, locale);
CREATE INDEX published_locale ON content.published (locale, article_id DESC);
CREATE INDEX published_tsv ON content.published USING gin (tsv);

-- Agreements of the catalogue. history: [{"status": n, "on": "YYYY-MM-DD"}].
CREATE TABLE content.agreements (
    agreement_id    uuid PRIMARY KEY,
    country         text NOT NULL,
    kind            smallint NOT NULL,
    title           text NOT NULL,
    status          smallint NOT NULL,
    status_since    date NOT NULL,
    history         jsonb NOT NULL,
    links           text[] NOT NULL DEFAULT '{}',
    source_locale   text,
    source_revision integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    position        bigint NOT NULL
);
CREATE INDEX agreements_country ON content.agreements (country, title, agreement_id);

-- Every revision of every summary, as written.
CREATE TABLE content.agreement_summaries (
    agreement_id uuid NOT NULL,
    locale       text NOT NULL,
    revision     integer NOT NULL,
    author       text NOT NULL,
    written_at   timestamptz NOT NULL,
    translates   integer,
    summary      text NOT NULL,
    PRIMARY KEY (agreement_id, locale, revision)
);

-- One row per summary language.
CREATE TABLE content.agreement_versions (
    agreement_id     uuid NOT NULL,
    locale           text NOT NULL,
    current_revision integer NOT NULL,
    in_line_with     integer,
    PRIMARY KEY (agreement_id, locale)
);

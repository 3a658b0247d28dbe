-- Muster's first schema, PostgreSQL flavour. ../sqlite/0001_init.sql must stay in step with
-- it: same tables, columns, constraint names and indexes. A shipped migration is never edited
-- (sqlx checks its checksum at every start); changes go in a new file in BOTH folders.
--
-- Portable types: ids are TEXT (UUIDs hyphenated, lower case); instants are BIGINT epoch
-- milliseconds UTC (`*_ms`), never now(); JSON is TEXT; enums are TEXT with their AWS wire
-- names. Every TEXT column that a listing orders or pages by is COLLATE "C" (code-point
-- order, as SQLite's BINARY): the database's own collation (en_US.UTF-8, ICU, ...) would
-- order 'a-b', 'a_b' and 'ab' differently from SQLite and break shared page tokens.

CREATE TABLE access_keys (
    access_key_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account       TEXT   NOT NULL,
    -- the secret, sealed with the server's master key; never stored in plain text
    secret_sealed BYTEA  NOT NULL,
    created_ms    BIGINT NOT NULL,
    revoked_ms    BIGINT
);

CREATE TABLE contacts (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account      TEXT   NOT NULL,
    alias        TEXT COLLATE "C" NOT NULL,
    display_name TEXT,
    contact_type TEXT   NOT NULL,
    -- muster_core::Plan as JSON
    plan         TEXT   NOT NULL,
    -- resource policy (JSON text) set by PutContactPolicy
    policy       TEXT,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    CONSTRAINT contacts_account_alias_key UNIQUE (account, alias)
);

CREATE TABLE channels (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account       TEXT   NOT NULL,
    contact_id    TEXT COLLATE "C" NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- the owning contact's alias (aliases never change), for ARNs
    contact_alias TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    channel_type  TEXT   NOT NULL,
    address       TEXT   NOT NULL,
    activation    TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    CONSTRAINT channels_contact_name_key UNIQUE (contact_id, name)
);
-- ListContactChannels pages by (created_ms, id) within a contact.
CREATE INDEX channels_contact_created ON channels (contact_id, created_ms, id);

-- Tags by (account, resource part of the ARN), e.g. ('000000000000', 'contact/akua').
CREATE TABLE tags (
    account  TEXT NOT NULL,
    resource TEXT NOT NULL,
    key      TEXT COLLATE "C" NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (account, resource, key)
);

-- The first use of each idempotency token: a retry with the same request gets `result`.
CREATE TABLE idempotency (
    account      TEXT   NOT NULL,
    operation    TEXT   NOT NULL,
    token        TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    result       TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (account, operation, token)
);
-- for expiring old tokens
CREATE INDEX idempotency_created ON idempotency (created_ms);

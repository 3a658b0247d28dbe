-- Muster's first schema, SQLite flavour. ../postgres/0001_init.sql must stay in step with it:
-- same tables, columns, constraint names and indexes. A shipped migration is never edited
-- (sqlx checks its checksum at every start); changes go in a new file in BOTH folders.
--
-- Portable types: ids are TEXT (UUIDs hyphenated, lower case); instants are INTEGER epoch
-- milliseconds UTC (`*_ms`), never SQL clock functions; JSON is TEXT; enums are TEXT with
-- their AWS wire names. SQLite compares TEXT bytewise (BINARY), which is what the
-- PostgreSQL side gets with COLLATE "C", so listings order identically on both.

CREATE TABLE access_keys (
    access_key_id TEXT    NOT NULL PRIMARY KEY,
    account       TEXT    NOT NULL,
    -- the secret, sealed with the server's master key; never stored in plain text
    secret_sealed BLOB    NOT NULL,
    created_ms    INTEGER NOT NULL,
    revoked_ms    INTEGER
) STRICT;

CREATE TABLE contacts (
    id           TEXT    NOT NULL PRIMARY KEY,
    account      TEXT    NOT NULL,
    alias        TEXT    NOT NULL,
    display_name TEXT,
    contact_type TEXT    NOT NULL,
    -- muster_core::Plan as JSON
    plan         TEXT    NOT NULL,
    -- resource policy (JSON text) set by PutContactPolicy
    policy       TEXT,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    CONSTRAINT contacts_account_alias_key UNIQUE (account, alias)
) STRICT;

CREATE TABLE channels (
    id            TEXT    NOT NULL PRIMARY KEY,
    account       TEXT    NOT NULL,
    contact_id    TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- the owning contact's alias (aliases never change), for ARNs
    contact_alias TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    channel_type  TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    activation    TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    CONSTRAINT channels_contact_name_key UNIQUE (contact_id, name)
) STRICT;
-- ListContactChannels pages by (created_ms, id) within a contact.
CREATE INDEX channels_contact_created ON channels (contact_id, created_ms, id);

-- Tags by (account, resource part of the ARN), e.g. ('000000000000', 'contact/akua').
CREATE TABLE tags (
    account  TEXT NOT NULL,
    resource TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (account, resource, key)
) STRICT, WITHOUT ROWID;

-- The first use of each idempotency token: a retry with the same request gets `result`.
CREATE TABLE idempotency (
    account      TEXT    NOT NULL,
    operation    TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    result       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (account, operation, token)
) STRICT, WITHOUT ROWID;
-- for expiring old tokens
CREATE INDEX idempotency_created ON idempotency (created_ms);

-- Device activation codes, activation sends (for the resend limit) and consent (opt-out /
-- opt-in), SQLite flavour. ../postgres/0003_activation.sql must stay in step with it (same
-- tables, columns, constraint names and indexes); the conventions of 0001_init.sql hold (TEXT
-- ids, INTEGER `*_ms`; SQLite compares TEXT bytewise, as the PostgreSQL side does with
-- COLLATE "C").

-- The channel's current activation code (at most one: issuing a new one replaces it). Only a
-- keyed hash of the code is stored. Goes with its channel (and so with its contact).
CREATE TABLE activation_codes (
    channel_id      TEXT NOT NULL PRIMARY KEY
                    REFERENCES channels (id) ON DELETE CASCADE,
    account         TEXT    NOT NULL,
    -- hex keyed hash of the code, computed by the caller
    code_hash       TEXT    NOT NULL,
    -- the code is valid while now < expires_ms
    expires_ms      INTEGER NOT NULL,
    -- wrong tries against this code
    failed_attempts INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL
) STRICT;

-- One row per activation code sent, for the resend limit; rows older than the limit's window
-- are pruned when a new one is recorded.
CREATE TABLE activation_sends (
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    sent_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX activation_sends_channel_sent ON activation_sends (channel_id, sent_ms);

-- Device addresses (exactly as given: e-mail address or E.164 number) that opted out. Global:
-- every channel with the address, in every account. The row is the opt-out that started the
-- block; an opt-in deletes it.
CREATE TABLE opt_outs (
    address      TEXT NOT NULL PRIMARY KEY,
    opted_out_ms INTEGER NOT NULL,
    source       TEXT   NOT NULL
) STRICT;

-- Every consent change, kept: OPT_OUT / OPT_IN, with its source and the raw message.
CREATE TABLE consent_events (
    id          TEXT NOT NULL PRIMARY KEY,
    address     TEXT NOT NULL,
    -- 1, 2, ... per address, in the order the store recorded the events (ties of created_ms)
    seq         INTEGER NOT NULL,
    kind        TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    raw_message TEXT,
    created_ms  INTEGER NOT NULL,
    CONSTRAINT consent_events_address_seq_key UNIQUE (address, seq)
) STRICT;
-- consent_events(address) lists newest first by (created_ms, seq).
CREATE INDEX consent_events_address_created ON consent_events (address, created_ms, seq);

-- Inbound replies and opt-outs find channels by exact address, across accounts.
CREATE INDEX channels_address ON channels (address);

-- Messages handed to providers, and the provider's status callbacks about them, SQLite
-- flavour. ../postgres/0005_deliveries.sql must stay in step with it.

-- One row per message a provider accepted. `provider_message_id` is the provider's own id
-- (a Twilio SID), which its status callbacks name. Not tied to the channel by a foreign
-- key: the record of what was sent outlives a deleted channel.
CREATE TABLE deliveries (
    message_id          TEXT NOT NULL PRIMARY KEY,
    account             TEXT,
    channel_id          TEXT,
    kind                TEXT    NOT NULL,
    provider            TEXT    NOT NULL,
    provider_message_id TEXT,
    -- the latest status: SENT, IN_PROGRESS, DELIVERED, READ, FAILED
    status              TEXT    NOT NULL,
    sent_ms             INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id);

-- Every status callback, matched to its delivery when one is known.
CREATE TABLE delivery_events (
    id                  TEXT NOT NULL PRIMARY KEY,
    message_id          TEXT,
    provider_message_id TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    error_code          TEXT,
    received_ms         INTEGER NOT NULL
) STRICT;
CREATE INDEX delivery_events_provider_message ON delivery_events (provider_message_id, received_ms);

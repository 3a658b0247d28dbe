-- Messages handed to providers, and the provider's status callbacks about them, PostgreSQL
-- flavour. ../sqlite/0005_deliveries.sql must stay in step with it.

CREATE TABLE deliveries (
    message_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account             TEXT COLLATE "C",
    channel_id          TEXT COLLATE "C",
    kind                TEXT   NOT NULL,
    provider            TEXT   NOT NULL,
    provider_message_id TEXT COLLATE "C",
    status              TEXT   NOT NULL,
    sent_ms             BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL
);
CREATE INDEX deliveries_provider_message ON deliveries (provider_message_id);

CREATE TABLE delivery_events (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    message_id          TEXT COLLATE "C",
    provider_message_id TEXT COLLATE "C" NOT NULL,
    status              TEXT   NOT NULL,
    error_code          TEXT,
    received_ms         BIGINT NOT NULL
);
CREATE INDEX delivery_events_provider_message ON delivery_events (provider_message_id, received_ms);

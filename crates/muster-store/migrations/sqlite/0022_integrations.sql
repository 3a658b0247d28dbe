-- Alert integrations (a key, a format, a response plan) and the alerts they received.
-- ../postgres/0022_integrations.sql must stay in step with it.

CREATE TABLE integrations (
    id            TEXT NOT NULL PRIMARY KEY,
    account       TEXT   NOT NULL,
    name          TEXT NOT NULL,
    format        TEXT   NOT NULL,
    plan_name     TEXT   NOT NULL,
    -- sha256 hex of the key; the key itself is shown once and never stored
    key_hash      TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL,
    revoked_ms    BIGINT,
    last_alert_ms BIGINT,
    last_outcome  TEXT,
    CONSTRAINT integrations_key_hash_key UNIQUE (key_hash),
    CONSTRAINT integrations_account_name_key UNIQUE (account, name)
);

CREATE TABLE alerts (
    id             TEXT NOT NULL PRIMARY KEY,
    integration_id TEXT NOT NULL,
    account        TEXT   NOT NULL,
    received_ms    BIGINT NOT NULL,
    action         TEXT   NOT NULL,
    dedupe_key     TEXT   NOT NULL,
    -- the incident it opened or fed (its id), if any
    incident_id    TEXT,
    outcome        TEXT   NOT NULL,
    -- the sender's payload (at most 1 MiB)
    payload        TEXT   NOT NULL
);
CREATE INDEX alerts_by_incident ON alerts (incident_id, received_ms);
CREATE INDEX alerts_by_integration ON alerts (integration_id, received_ms);

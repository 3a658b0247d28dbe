-- ../sqlite/0023_alert_state.sql must stay in step with it.

-- An integration's latest alert is read from the alerts table (the newest row of the
-- integration), no longer written on the integration by every alert: that one row would make
-- concurrent alert writers wait on each other.
ALTER TABLE integrations DROP COLUMN last_alert_ms;
ALTER TABLE integrations DROP COLUMN last_outcome;

-- The alerts each incident has had, by identity (a fingerprint, or a dedupe key): a trigger
-- that brings one it has not had may page again (`muster:repage-on-new-alert`).
CREATE TABLE incident_alerts (
    incident_id TEXT COLLATE "C" NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    alert       TEXT COLLATE "C" NOT NULL,
    first_ms    BIGINT NOT NULL,
    PRIMARY KEY (incident_id, alert)
);

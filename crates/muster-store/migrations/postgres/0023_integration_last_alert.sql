-- An integration's latest alert is read from the alerts table (the newest row of the
-- integration), no longer written on the integration by every alert: that one row would make
-- concurrent alert writers wait on each other.
-- ../sqlite/0023_integration_last_alert.sql must stay in step with it.

ALTER TABLE integrations DROP COLUMN last_alert_ms;
ALTER TABLE integrations DROP COLUMN last_outcome;

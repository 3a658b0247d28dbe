-- `muster import`: which Muster resource each imported source entity became, and the hashes
-- that tell, on the next run, whether the source or the Muster side changed since.
-- ../postgres/0024_import_map.sql must stay in step with it.

CREATE TABLE import_map (
    -- the Muster account imported into
    account        TEXT NOT NULL,
    -- aws, opsgenie, grafana-oncall, pagerduty, goalert
    source_system  TEXT NOT NULL,
    -- the source's account (an AWS account and region, an Opsgenie site, ...)
    source_account TEXT NOT NULL,
    -- person, rotation, override, schedule, escalation
    source_kind    TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    -- the ARN (an override: its rotation's ARN, '#', its id)
    target_arn     TEXT NOT NULL,
    -- sha256 hex of the source entity as mapped
    source_hash    TEXT   NOT NULL,
    -- sha256 hex of the Muster resource as the import left it
    target_hash    TEXT   NOT NULL,
    imported_ms    BIGINT NOT NULL,
    tool_version   TEXT   NOT NULL,
    PRIMARY KEY (account, source_system, source_account, source_kind, source_id)
);

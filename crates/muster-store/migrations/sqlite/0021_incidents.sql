-- Incidents (the ssm-incidents slice): response plans, incident records, their timeline
-- events and related items, the per-account replication set and resource policies.
-- ../postgres/0021_incidents.sql must stay in step with it. Tags of these resources live in
-- `tags` (resource `response-plan/<name>`, `incident-record/<plan>/<id>`,
-- `replication-set/<id>`).

CREATE TABLE response_plans (
    account    TEXT NOT NULL,
    name       TEXT NOT NULL,
    -- muster_core::incident::ResponsePlan as JSON
    plan       TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account, name)
);

CREATE TABLE incidents (
    id            TEXT NOT NULL PRIMARY KEY,
    account       TEXT   NOT NULL,
    plan_name     TEXT   NOT NULL,
    title         TEXT   NOT NULL,
    impact        BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    dedupe_string TEXT   NOT NULL,
    -- sha256 hex of dedupe_string: the unique index below cannot hold 1,000-character keys
    dedupe_hash   TEXT   NOT NULL,
    created_by    TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    updated_by    TEXT   NOT NULL,
    resolved_ms   BIGINT,
    -- bumped by every update (optimistic concurrency)
    version       BIGINT NOT NULL,
    -- muster_core::incident::IncidentDetails as JSON
    details       TEXT   NOT NULL
);
-- At most one OPEN incident per (account, dedupe string): concurrent starts cannot create two.
CREATE UNIQUE INDEX incidents_open_dedupe ON incidents (account, dedupe_hash) WHERE status = 'OPEN';
CREATE INDEX incidents_by_created ON incidents (account, created_ms, id);

CREATE TABLE timeline_events (
    incident_id   TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    event_time_ms BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    event_type    TEXT   NOT NULL,
    data          TEXT   NOT NULL,
    -- [muster_core::incident::EventReference] as JSON
    refs          TEXT   NOT NULL,
    PRIMARY KEY (incident_id, id)
);

CREATE TABLE related_items (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    -- muster_core::incident::RelatedItem::identity
    identity    TEXT NOT NULL,
    -- muster_core::incident::RelatedItem as JSON
    item        TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (incident_id, identity)
);

CREATE TABLE replication_sets (
    account            TEXT NOT NULL PRIMARY KEY,
    id                 TEXT   NOT NULL,
    -- [muster_core::incident::ReplicationRegion] as JSON
    regions            TEXT   NOT NULL,
    deletion_protected BOOLEAN NOT NULL,
    created_by         TEXT   NOT NULL,
    created_ms         BIGINT NOT NULL,
    updated_by         TEXT   NOT NULL,
    updated_ms         BIGINT NOT NULL
);

CREATE TABLE resource_policies (
    account      TEXT NOT NULL,
    id           TEXT NOT NULL,
    resource_arn TEXT   NOT NULL,
    policy       TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE INDEX resource_policies_by_resource ON resource_policies (account, resource_arn, created_ms);


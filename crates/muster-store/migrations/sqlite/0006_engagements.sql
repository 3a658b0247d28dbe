-- Engagements, their pages and the pages' receipts, SQLite flavour.
-- ../postgres/0006_engagements.sql must stay in step with it.

-- One row per engagement. `snapshot` (JSON) holds the plans and rotations as they were when
-- it started; `state` (JSON) which stages have begun and who acknowledged
-- (muster_core::engagement). `generation` goes up with every change of state: the one step
-- job of a running engagement (jobs.dedup_key = 'step:' || id) carries the generation it was
-- written for and does nothing if it is stale.
CREATE TABLE engagements (
    id             TEXT NOT NULL PRIMARY KEY,
    account        TEXT    NOT NULL,
    contact_alias  TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    content        TEXT    NOT NULL,
    public_subject TEXT,
    public_content TEXT,
    incident_id    TEXT,
    start_ms       INTEGER NOT NULL,
    -- set when it ends: plan run out (reason 'completed'), acknowledged, or stopped
    stop_ms        INTEGER,
    stop_reason    TEXT,
    generation     INTEGER NOT NULL,
    snapshot       TEXT    NOT NULL,
    state          TEXT    NOT NULL
) STRICT;
CREATE INDEX engagements_by_start ON engagements (account, start_ms, id);
CREATE INDEX engagements_by_incident ON engagements (account, incident_id, start_ms, id);
-- The auditor's scan: running engagements only.
CREATE INDEX engagements_running ON engagements (start_ms) WHERE stop_ms IS NULL;

-- One row per channel paged in an engagement (DESIGN.md: a page is one engagement of one
-- contact channel). `unit` indexes the engagement state's units; `path` (JSON) is the
-- resolution path. `channel_id` is the channel as it was named by the plan; the channel may
-- have been deleted since (no foreign key: the record outlives it).
CREATE TABLE pages (
    id              TEXT NOT NULL PRIMARY KEY,
    account         TEXT    NOT NULL,
    engagement_id   TEXT    NOT NULL REFERENCES engagements (id) ON DELETE CASCADE,
    unit            INTEGER NOT NULL,
    contact_alias   TEXT    NOT NULL,
    channel_id      TEXT,
    channel_arn     TEXT    NOT NULL,
    stage_index     INTEGER NOT NULL,
    retry_minutes   INTEGER NOT NULL,
    path            TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    -- how many times a send was tried (a retry after a failure adds one)
    send_rounds     INTEGER NOT NULL DEFAULT 0,
    sent_ms         INTEGER,
    delivery_ms     INTEGER,
    read_ms         INTEGER
) STRICT;
CREATE INDEX pages_by_engagement ON pages (engagement_id, created_ms, id);
CREATE INDEX pages_by_contact ON pages (account, contact_alias, created_ms, id);
CREATE INDEX pages_by_channel ON pages (channel_id, sent_ms);

CREATE TABLE receipts (
    id           TEXT NOT NULL PRIMARY KEY,
    page_id      TEXT    NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    channel_arn  TEXT    NOT NULL,
    receipt_type TEXT    NOT NULL,
    info         TEXT,
    time_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX receipts_by_page ON receipts (page_id, time_ms, id);

-- Which page a message was (status callbacks and voice keypresses find the page by it).
ALTER TABLE deliveries ADD COLUMN page_id TEXT;

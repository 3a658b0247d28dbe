-- An engagement's snapshot (the plans and rotations as they were when it started: about a
-- kilobyte of JSON, never changed) moves to a table of its own, so that the rows rewritten by
-- every change of state are small: a group commit's updates of the engagements in flight then
-- dirty a few pages instead of one page per two or three engagements.
-- ../postgres/0011_engagement_snapshots.sql must stay in step with it.
CREATE TABLE engagement_snapshots (
    engagement_id TEXT NOT NULL PRIMARY KEY REFERENCES engagements (id) ON DELETE CASCADE,
    snapshot      TEXT NOT NULL
) STRICT;
INSERT INTO engagement_snapshots (engagement_id, snapshot) SELECT id, snapshot FROM engagements;
ALTER TABLE engagements DROP COLUMN snapshot;

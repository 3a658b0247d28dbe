-- An engagement's snapshot (the plans and rotations as they were when it started: about a
-- kilobyte of JSON, never changed) moves to a table of its own, so that the rows rewritten by
-- every change of state are small: a group commit's updates of the engagements in flight then
-- write small row versions instead of copying the snapshot each time.
-- ../sqlite/0011_engagement_snapshots.sql must stay in step with it.
CREATE TABLE engagement_snapshots (
    engagement_id TEXT COLLATE "C" NOT NULL PRIMARY KEY
        REFERENCES engagements (id) ON DELETE CASCADE,
    snapshot      TEXT NOT NULL
);
INSERT INTO engagement_snapshots (engagement_id, snapshot) SELECT id, snapshot FROM engagements;
ALTER TABLE engagements DROP COLUMN snapshot;

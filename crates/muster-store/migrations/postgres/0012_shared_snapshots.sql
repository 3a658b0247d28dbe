-- Engagements share their snapshots: a snapshot is stored once under a key, the SHA-256 of
-- its text (lowercase hex), and every engagement names its snapshot by that key. Engagements
-- of one contact with an unchanged plan (the usual case: the same on-call rota is paged again
-- and again) store about a kilobyte less each. The snapshots of engagements started before
-- this migration keep their own, keyed by the engagement's id (keys are opaque: a hex digest
-- and a UUID cannot be equal). Snapshots are never deleted (engagements are not).
-- ../sqlite/0012_shared_snapshots.sql must stay in step with it.
CREATE TABLE snapshots (
    key      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    snapshot TEXT NOT NULL
);
INSERT INTO snapshots (key, snapshot)
    SELECT engagement_id, snapshot FROM engagement_snapshots;
-- '' only for the rows of the moment (set just below); every insert names its snapshot.
ALTER TABLE engagements ADD COLUMN snapshot_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE engagements SET snapshot_key = id;
DROP TABLE engagement_snapshots;

-- On-call rotations, their overrides and calendar-feed tokens, SQLite flavour.
-- ../postgres/0002_rotations.sql must stay in step with it (same tables, columns, constraint
-- names and indexes); the conventions of 0001_init.sql hold (TEXT ids, INTEGER `*_ms`;
-- SQLite compares TEXT bytewise, as the PostgreSQL side does with COLLATE "C").

CREATE TABLE rotations (
    id         TEXT NOT NULL PRIMARY KEY,
    account    TEXT   NOT NULL,
    -- case-sensitive; ListRotations filters by prefix (a code-point range)
    name       TEXT NOT NULL,
    -- the rotation's StartTime
    start_ms   INTEGER NOT NULL,
    -- IANA time-zone name
    time_zone  TEXT   NOT NULL,
    -- the recurrence as JSON (muster_core's type); opaque to the store
    recurrence TEXT   NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
-- ListRotations pages by (created_ms, id) within an account.
CREATE INDEX rotations_account_created ON rotations (account, created_ms, id);

-- The rotation's contacts in shift order (position 0, 1, ...). RESTRICT: a contact that is a
-- member of a rotation cannot be deleted.
CREATE TABLE rotation_members (
    rotation_id TEXT NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    contact_id  TEXT NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    PRIMARY KEY (rotation_id, position)
) STRICT;
-- "which rotations is this contact in" and the RESTRICT check of a contact's deletion
CREATE INDEX rotation_members_contact ON rotation_members (contact_id);

CREATE TABLE rotation_overrides (
    id          TEXT NOT NULL PRIMARY KEY,
    account     TEXT   NOT NULL,
    rotation_id TEXT NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    -- the override covers [start_ms, end_ms)
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;
-- ListRotationOverrides pages by (start_ms, id) within a rotation.
CREATE INDEX rotation_overrides_rotation_start ON rotation_overrides (rotation_id, start_ms, id);

-- The contacts on call during an override, in order (none is allowed). RESTRICT as above.
CREATE TABLE override_members (
    override_id TEXT NOT NULL REFERENCES rotation_overrides (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    contact_id  TEXT NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    PRIMARY KEY (override_id, position)
) STRICT;
CREATE INDEX override_members_contact ON override_members (contact_id);

-- Calendar-feed tokens. Only a hash of the secret token is stored. A feed shows exactly one
-- rotation or one contact, and goes when its target goes (CASCADE).
CREATE TABLE feeds (
    id          TEXT NOT NULL PRIMARY KEY,
    account     TEXT   NOT NULL,
    -- hex SHA-256 of the secret token
    token_hash  TEXT NOT NULL,
    rotation_id TEXT REFERENCES rotations (id) ON DELETE CASCADE,
    contact_id  TEXT REFERENCES contacts (id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER,
    CONSTRAINT feeds_token_hash_key UNIQUE (token_hash),
    CONSTRAINT feeds_one_target CHECK ((rotation_id IS NULL) <> (contact_id IS NULL))
) STRICT;
CREATE INDEX feeds_account_created ON feeds (account, created_ms, id);
CREATE INDEX feeds_rotation ON feeds (rotation_id);
CREATE INDEX feeds_contact ON feeds (contact_id);

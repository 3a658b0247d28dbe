-- Durable work: the jobs queue the engine (crates/muster-engine) runs, SQLite flavour.
-- ../postgres/0004_jobs.sql must stay in step with it (same table, columns, constraint names and
-- indexes); the conventions of 0001_init.sql hold (TEXT ids, INTEGER `*_ms`; SQLite compares
-- TEXT bytewise, as the PostgreSQL side does with COLLATE "C").
--
-- A job is due when `due_ms <= now`; it is claimable when due and not leased (`lease_until_ms`
-- NULL or `<= now`). A claim sets the lease and counts an attempt; completing deletes the row.
CREATE TABLE jobs (
    id             TEXT NOT NULL PRIMARY KEY,
    -- what runs it, e.g. "stage", "send"
    kind           TEXT    NOT NULL,
    -- JSON text, opaque to the store
    payload        TEXT    NOT NULL,
    due_ms         INTEGER NOT NULL,
    -- claims so far (incremented by every claim)
    attempts       INTEGER NOT NULL,
    -- the engine holding the job, until lease_until_ms; both NULL when not leased
    lease_owner    TEXT,
    lease_until_ms INTEGER,
    created_ms     INTEGER NOT NULL,
    -- at most one pending job per key (NULLs are not equal: jobs without a key never clash)
    dedup_key      TEXT,
    CONSTRAINT jobs_dedup_key_key UNIQUE (dedup_key)
) STRICT;
-- Claims take due jobs in (due_ms, id) order.
CREATE INDEX jobs_due ON jobs (due_ms, id);
-- The runner's next wake-up looks at the leased jobs (the ones in flight) separately.
CREATE INDEX jobs_leased ON jobs (lease_until_ms) WHERE lease_until_ms IS NOT NULL;

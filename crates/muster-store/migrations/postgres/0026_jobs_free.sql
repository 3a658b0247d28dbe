-- The unleased jobs by due time, for claims and the engine's next wake-up, replacing jobs_due
-- (every job by due time). Under load the front of jobs_due held the jobs in flight (leased,
-- due in the past: ~250 in the throughput benchmark) and the entries of jobs just deleted; a
-- claim or a read of the next wake-up stepped over all of them, with a visit to the table for
-- each leased one (1.1 ms and ~900 buffers a read under load, the costliest statements of that
-- benchmark). A pre-leased send never enters this index. Claims of expired leases read
-- jobs_held_until (0025). ../sqlite/0026_jobs_free.sql must stay in step with it.
CREATE INDEX jobs_free ON jobs (due_ms, id) WHERE lease_until_ms IS NULL;
DROP INDEX jobs_due;
-- Room on each table page for a new version of its rows: a send's outcome updates its page
-- row and a step its engagement row within seconds of the insert. With free space on the same
-- table page, PostgreSQL writes the new version there without new index entries (a HOT
-- update) when no indexed column changed; on full pages (the default, 100) 72% of page updates
-- and 87% of engagement updates in the throughput benchmark added an entry to every index.
-- Only PostgreSQL has this setting; ../sqlite/0026_jobs_free.sql has no counterpart.
ALTER TABLE pages SET (fillfactor = 70);
ALTER TABLE engagements SET (fillfactor = 50);

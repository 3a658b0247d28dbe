-- Counterpart of ../postgres/0026_jobs_free.sql: the unleased jobs by due time replace
-- jobs_due (claims of expired leases read jobs_held_until). The fill factors set there have no
-- SQLite counterpart.
CREATE INDEX jobs_free ON jobs (due_ms, id) WHERE lease_until_ms IS NULL;
DROP INDEX jobs_due;

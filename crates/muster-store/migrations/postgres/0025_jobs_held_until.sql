-- The leased jobs by when each can be claimed again: its lease's end, or its due time if later.
-- The engine's read of its next wake-up (NEXT_DUE in jobs.rs) takes the first entry. It
-- replaces jobs_leased (by lease end), with which that read took the minimum of the expression
-- over every leased row; PostgreSQL planned it as a scan of the whole table once its statistics
-- had been taken while many jobs were leased (5.5 ms a read under load, the costliest statement
-- of the throughput benchmark). ../sqlite/0025_jobs_held_until.sql must stay in step with it.
CREATE INDEX jobs_held_until ON jobs ((CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END))
    WHERE lease_until_ms IS NOT NULL;
DROP INDEX jobs_leased;

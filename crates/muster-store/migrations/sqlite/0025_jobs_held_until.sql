-- The leased jobs by when each can be claimed again (../postgres/0025_jobs_held_until.sql says why).
CREATE INDEX jobs_held_until ON jobs ((CASE WHEN lease_until_ms > due_ms THEN lease_until_ms ELSE due_ms END))
    WHERE lease_until_ms IS NOT NULL;
DROP INDEX jobs_leased;

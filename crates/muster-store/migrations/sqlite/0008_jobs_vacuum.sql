-- Counterpart of ../postgres/0008_jobs_vacuum.sql (autovacuum settings of the jobs table).
-- SQLite reuses the pages of deleted rows itself: nothing to do. The statement keeps the
-- migration non-empty.
SELECT 1;

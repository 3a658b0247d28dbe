-- The jobs table is a queue: every job is inserted, leased (updated) and deleted within
-- seconds, so dead rows pile up at the front of jobs_due, exactly where every claim starts its
-- scan. PostgreSQL's default (vacuum when 20% of the table is dead, cost-throttled) let 85,000
-- dead rows wait behind a 100,000-row backlog and claims slowed from 0.2 ms to 2-9 ms. Vacuum
-- this table after every 2,000 dead rows, unthrottled; it only ever holds pending work, so
-- each run is short. ../sqlite/0008_jobs_vacuum.sql is its (empty) SQLite counterpart.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 2000,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

-- SQLite's idempotency table gets rowids and its key in an index only
-- (../sqlite/0013_idempotency_rows.sql); a PostgreSQL table is a heap with its key in an
-- index already. Nothing expires tokens, so on both the index for an expiry goes.
DROP INDEX idempotency_created;

-- Idempotency tokens: a table with rowids, and the key (account, operation, token) in its
-- index only. Clients draw tokens at random, so every first use inserts at a random place in
-- the key's B-tree: in a WITHOUT ROWID table that B-tree held the whole row (with the stored
-- result and request hash, ~200 bytes), a dozen rows to a page, and each token of a group
-- commit dirtied a leaf and split one every few inserts (~20 WAL pages per group commit in
-- the throughput benchmark, the most of any table). The index entries are a third of that
-- size; the rows go to the end of the table. Nothing expires tokens, so idempotency_created
-- (kept for an expiry) goes; PostgreSQL drops it too (../postgres/0013_idempotency_rows.sql),
-- its table being a heap with its key in an index already.
CREATE TABLE idempotency_rows (
    account      TEXT    NOT NULL,
    operation    TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    result       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (account, operation, token)
) STRICT;
INSERT INTO idempotency_rows (account, operation, token, request_hash, result, created_ms)
    SELECT account, operation, token, request_hash, result, created_ms
    FROM idempotency ORDER BY created_ms;
DROP TABLE idempotency;
ALTER TABLE idempotency_rows RENAME TO idempotency;

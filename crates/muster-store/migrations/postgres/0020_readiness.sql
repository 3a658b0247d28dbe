-- One row that `/readyz` rewrites (Store::ping): readiness means the database takes a
-- durable write, not only that it answers a SELECT (a full disk answers SELECTs).
-- ../sqlite/0020_readiness.sql must stay in step with it.
CREATE TABLE readiness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probes BIGINT NOT NULL
);
INSERT INTO readiness (id, probes) VALUES (1, 0);

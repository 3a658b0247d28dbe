-- Receipts are read by page only (ListPageReceipts, in time order), so their key is
-- (page_id, time_ms, id): one B-tree written per receipt instead of three (a rowid table, the
-- unique index of the text id, and receipts_by_page). Under load in the throughput benchmark
-- those three were ~11 of the ~95 WAL pages of a group commit. A receipt's id is only the
-- tie-break of two receipts of a page at one millisecond; inserting a receipt again (a retried
-- write) still does nothing. Nothing refers to receipts.
-- ../postgres/0014_receipts_by_page.sql must stay in step with it.
CREATE TABLE receipts_by_page_key (
    page_id      TEXT    NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    time_ms      INTEGER NOT NULL,
    id           TEXT    NOT NULL,
    channel_arn  TEXT    NOT NULL,
    receipt_type TEXT    NOT NULL,
    info         TEXT,
    PRIMARY KEY (page_id, time_ms, id)
) STRICT, WITHOUT ROWID;
INSERT INTO receipts_by_page_key (page_id, time_ms, id, channel_arn, receipt_type, info)
    SELECT page_id, time_ms, id, channel_arn, receipt_type, info FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_by_page_key RENAME TO receipts;

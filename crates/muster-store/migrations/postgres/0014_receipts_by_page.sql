-- Receipts are read by page only (ListPageReceipts, in time order), so their key is
-- (page_id, time_ms, id), and the index of that key is the primary key's: one index per
-- receipt instead of two. A receipt's id is only the tie-break of two receipts of a page at
-- one millisecond; inserting a receipt again (a retried write) still does nothing.
-- ../sqlite/0014_receipts_by_page.sql must stay in step with it.
ALTER TABLE receipts DROP CONSTRAINT receipts_pkey;
ALTER TABLE receipts ADD PRIMARY KEY (page_id, time_ms, id);
DROP INDEX receipts_by_page;

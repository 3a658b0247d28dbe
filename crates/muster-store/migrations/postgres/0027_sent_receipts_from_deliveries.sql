-- A page's SENT receipts are its delivery records (ListPageReceipts reads them from
-- `deliveries`: a send the provider accepted is one row, not two). The SENT receipts written
-- before this migration beside their delivery records go; those without one stay. A page's
-- messages have ids that begin with its own first 48 bits (13 characters of its id), which
-- bounds the look-up to a range of the deliveries' primary key, as ListPageReceipts does.
-- ../sqlite/0027_sent_receipts_from_deliveries.sql must stay in step with it.
DELETE FROM receipts r
WHERE r.receipt_type = 'SENT'
  AND EXISTS (
    SELECT 1 FROM deliveries d
    WHERE d.message_id >= substr(r.page_id, 1, 13)
      AND d.message_id < substr(r.page_id, 1, 13) || '~'
      AND d.page_id = r.page_id
      AND d.kind = 'page'
      AND d.sent_ms = r.time_ms
  );

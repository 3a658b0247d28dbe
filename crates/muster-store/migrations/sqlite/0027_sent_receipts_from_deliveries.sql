-- Counterpart of ../postgres/0027_sent_receipts_from_deliveries.sql: the SENT receipts written
-- beside their delivery records go (ListPageReceipts reads them from `deliveries`).
DELETE FROM receipts
WHERE receipt_type = 'SENT'
  AND EXISTS (
    SELECT 1 FROM deliveries d
    WHERE d.message_id >= substr(receipts.page_id, 1, 13)
      AND d.message_id < substr(receipts.page_id, 1, 13) || '~'
      AND d.page_id = receipts.page_id
      AND d.kind = 'page'
      AND d.sent_ms = receipts.time_ms
  );

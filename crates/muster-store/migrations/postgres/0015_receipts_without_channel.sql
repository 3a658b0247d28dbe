-- A receipt's channel is its page's (`pages.channel_arn`): ListPageReceipts reads it from
-- the page. The copy in every receipt was about half of the row.
-- ../sqlite/0015_receipts_without_channel.sql must stay in step with it.
ALTER TABLE receipts DROP COLUMN channel_arn;

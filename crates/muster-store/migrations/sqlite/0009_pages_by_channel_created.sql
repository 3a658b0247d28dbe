-- The index behind an SMS reply's lookup of open pages (channels with the sender's address)
-- keyed by when each page was created instead of when it was first sent: a page's entry is
-- written once, at the end of its channel's range, and a send no longer moves it (under load
-- the move dirtied two leaves per send, and on PostgreSQL kept page updates from being HOT).
-- The lookup bounds the creation time a day before the sending window (engagements.rs).
DROP INDEX pages_by_channel;
CREATE INDEX pages_by_channel ON pages (channel_id, created_ms);

-- An SMS reply's lookup of open pages reads the pages of the channel's contact through
-- pages_by_contact (a plan pages only its own contact's channels, so a page's contact is
-- its channel's) instead of an index of its own: every page inserted an entry at a random
-- place in pages_by_channel (channel ids are random), about an eighth of the pages each
-- group commit wrote. The lookup reads the contact's pages created at most a day before
-- the sending window (engagements.rs, OPEN_PAGE_CREATED_SLACK_MS).
DROP INDEX pages_by_channel;

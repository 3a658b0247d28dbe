-- Activation codes sent, by destination address and by account, for the limits that the
-- per-channel one (activation_sends) cannot give: ten channels with one number, or a
-- thousand channels of one account, each under its own channel's limit. Rows do not go with
-- their channel (deleting and re-creating channels must not reset the counts); they are
-- pruned once older than the limits' window. ../sqlite/0016_code_sends.sql must stay in
-- step with it. Addresses are compared for equality only and keep the database's collation,
-- as channels.address does.
CREATE TABLE code_sends (
    -- the address exactly as the channel stores it (an E.164 number or an e-mail address)
    address TEXT   NOT NULL,
    account TEXT   NOT NULL,
    sent_ms BIGINT NOT NULL
);
CREATE INDEX code_sends_address_sent ON code_sends (address, sent_ms);
CREATE INDEX code_sends_account_sent ON code_sends (account, sent_ms);
-- The prune deletes by age alone.
CREATE INDEX code_sends_sent ON code_sends (sent_ms);

-- Inbound provider messages already acted on, by their provider ids, so that a replayed
-- webhook (a captured Twilio STOP, a status callback sent twice, an e-mail posted twice) has
-- no second effect. `message_key` names the hook and the ids it covers, e.g.
-- `twilio-sms:SM…`, `twilio-status:SM…:DELIVERED`, `email:<hash of the Message-ID>`. Rows are pruned
-- once older than the retention the server uses (the replay window of requests that carry
-- no time of their own). ../sqlite/0017_inbound_messages.sql must stay in step with it.
CREATE TABLE inbound_messages (
    message_key TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    received_ms BIGINT NOT NULL
);
CREATE INDEX inbound_messages_received ON inbound_messages (received_ms);

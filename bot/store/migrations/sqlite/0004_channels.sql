-- Channels that send: a reply can thread under the message it answers (a Telegram reply, an X
-- reply in the conversation), and each channel keeps small cursors (X's since_id) here, so that
-- a restarted process, or another one, carries on where the last one stopped.
ALTER TABLE outbox ADD COLUMN reply_to TEXT;

CREATE TABLE channel_state (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (channel, key)
);

-- Receipts for sent replies: when the platform said a reply reached the person (delivered_at)
-- and when they read it (read_at), from WhatsApp's statuses, Messenger's message_deliveries and
-- message_reads, and Instagram's messaging_seen. Each keeps the earliest time reported, and a
-- read sets delivered too, so a receipt that comes late, twice or out of order never moves
-- either back. send_started_at is when the send that worked began: Meta's watermarks are its
-- own times for the messages they cover, which fall between it and sent_at.
ALTER TABLE outbox ADD COLUMN delivered_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN read_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN send_started_at TIMESTAMPTZ;

-- A receipt finds its reply by the platform's id, or by the person it went to (a watermark);
-- the inbox finds each reply's row by the message it answers.
CREATE INDEX outbox_platform_message ON outbox (channel, platform_message_id)
    WHERE platform_message_id IS NOT NULL;
CREATE INDEX outbox_sent_to ON outbox (channel, recipient) WHERE state = 'sent';
CREATE INDEX outbox_message ON outbox (message_id);

-- Data protection: when a message's text and sender were blanked (purged after
-- [data] keep_messages, or erased on request); what reports need stays.
ALTER TABLE messages ADD COLUMN erased_at TEXT;

-- Finding one person's messages (export, erase) and a date range's (purge, reports).
CREATE INDEX messages_sender ON messages (channel, sender);
CREATE INDEX messages_received ON messages (received_at);

-- Work that must happen once however many processes run: a job is claimed by one holder
-- (a process) until lease_until; a holder killed mid-job loses the lease when it runs out.
CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    holder TEXT,
    lease_until TEXT,
    last_started_at TEXT,
    last_finished_at TEXT
);

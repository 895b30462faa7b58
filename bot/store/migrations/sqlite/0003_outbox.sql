-- The outbox: every reply and alert to send, kept until it is sent or given up on.
-- A sender process claims due rows for lease_until; one killed mid-send loses them when the lease
-- runs out, and another sends them. priority 1 (emergencies) goes before 0.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES messages (id),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('auto', 'human', 'alert')),
    text TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    holder TEXT,
    lease_until TEXT,
    last_error TEXT,
    platform_message_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);

CREATE INDEX outbox_due ON outbox (priority DESC, next_attempt_at, id) WHERE state = 'pending';

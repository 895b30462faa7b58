-- The queue: every message, the decision triage made for it, and every reply.
-- Datetimes are UTC text, 'YYYY-MM-DDTHH:MM:SS.ffffffZ': fixed width, so text order is time order.
-- Booleans are 0 or 1.

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    sender_name TEXT,
    text TEXT NOT NULL,
    received_at TEXT NOT NULL,
    staffed INTEGER NOT NULL CHECK (staffed IN (0, 1)),
    reply_by TEXT,
    opens_at TEXT,
    emergency TEXT,
    redirect TEXT,
    team TEXT,
    language TEXT NOT NULL,
    template TEXT,
    matched TEXT,
    held_back TEXT,
    done_at TEXT,
    done_by TEXT,
    first_human_reply_at TEXT,
    UNIQUE (channel, platform_id)
);

-- open_items filters on done_at IS NULL and sorts by these.
CREATE INDEX messages_open ON messages (reply_by, received_at) WHERE done_at IS NULL;

CREATE TABLE replies (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    kind TEXT NOT NULL CHECK (kind IN ('auto', 'human')),
    template TEXT,
    text TEXT NOT NULL,
    author TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX replies_message ON replies (message_id);

CREATE TABLE senders (
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    last_ack_at TEXT,
    last_ack_template TEXT,
    opted_out INTEGER NOT NULL DEFAULT 0 CHECK (opted_out IN (0, 1)),
    PRIMARY KEY (channel, sender)
);

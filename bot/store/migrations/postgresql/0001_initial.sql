-- The queue: every message, the decision triage made for it, and every reply.
-- The same tables as the SQLite migration of the same number, in PostgreSQL's types:
-- datetimes are timestamptz (UTC in, UTC out), booleans are boolean.

CREATE TABLE messages (
    id BIGINT PRIMARY KEY,  -- taken from messages_id_seq before the row is written
    reference TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    sender_name TEXT,
    text TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    staffed BOOLEAN NOT NULL,
    reply_by TIMESTAMPTZ,
    opens_at TIMESTAMPTZ,
    emergency TEXT,
    redirect TEXT,
    team TEXT,
    language TEXT NOT NULL,
    template TEXT,
    matched TEXT,
    held_back TEXT,
    done_at TIMESTAMPTZ,
    done_by TEXT,
    first_human_reply_at TIMESTAMPTZ,
    UNIQUE (channel, platform_id)
);

-- The reference is derived from the id, so the id is known before the decision is made.
CREATE SEQUENCE messages_id_seq OWNED BY messages.id;

-- open_items filters on done_at IS NULL and sorts by these.
CREATE INDEX messages_open ON messages (reply_by, received_at) WHERE done_at IS NULL;

CREATE TABLE replies (
    id BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    kind TEXT NOT NULL CHECK (kind IN ('auto', 'human')),
    template TEXT,
    text TEXT NOT NULL,
    author TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX replies_message ON replies (message_id);

CREATE TABLE senders (
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    last_ack_at TIMESTAMPTZ,
    last_ack_template TEXT,
    opted_out BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (channel, sender)
);

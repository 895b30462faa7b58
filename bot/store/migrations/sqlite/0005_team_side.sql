-- The team's side: people who log in, their sessions, their teams; who is on each message;
-- notes; where a human reply goes back to; and what has already been alerted.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT NOT NULL,          -- scrypt, with its parameters and salt; never the password
    created_at TEXT NOT NULL,
    disabled_at TEXT
);

CREATE TABLE user_teams (
    user_id INTEGER NOT NULL REFERENCES users (id),
    team TEXT NOT NULL,                    -- a [[team]] name from rules.toml, or "default"
    PRIMARY KEY (user_id, team)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,          -- sha256 of the cookie's value: a stolen table logs nobody in
    user_id INTEGER NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Failed logins, counted per username and per address over a window, shared by every process.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE INDEX login_failures_key ON login_failures (key, at);

ALTER TABLE messages ADD COLUMN conversation TEXT;   -- where a reply goes back (a chat, a user)
ALTER TABLE messages ADD COLUMN thread TEXT;         -- the platform message to reply under
ALTER TABLE messages ADD COLUMN assigned_to INTEGER REFERENCES users (id);
ALTER TABLE messages ADD COLUMN alerted_at TEXT;         -- included in a team alert
ALTER TABLE messages ADD COLUMN breach_alerted_at TEXT;  -- "about to break its promise" sent

CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX notes_message ON notes (message_id);

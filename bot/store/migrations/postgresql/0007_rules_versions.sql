-- Rules and templates kept as versions, so comms staff can change them from the browser on a
-- dyno whose files are wiped at every restart. A version is the whole text of rules.toml and of
-- every template; it is never changed, and the newest one is in force. The id is the one the
-- save was based on plus one, so of two saves based on the same version the second is refused
-- by the primary key, on both databases, and loses nothing.
CREATE TABLE rules_versions (
    id BIGINT PRIMARY KEY CHECK (id > 0),
    files TEXT NOT NULL,                  -- JSON: {"rules.toml": "...", "responses/en/x.txt": "..."}
    author TEXT NOT NULL,                 -- a user's name, or "the rules file"
    note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,                 -- file, browser, restore, closure
    created_at TIMESTAMPTZ NOT NULL
);

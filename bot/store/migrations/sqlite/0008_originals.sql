-- The message as the platform delivered it, for the team: a mail's raw RFC 5322 text (headers,
-- every part, attachments up to 1 MB), which the queue's text only summarises. Purging or
-- erasing a message deletes its original with it.
CREATE TABLE originals (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    content BLOB NOT NULL
);

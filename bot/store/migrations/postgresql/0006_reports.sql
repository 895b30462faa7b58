-- Reports: contacts on other channels (phone, face to face, email...) imported per day from a
-- CSV, to show beside the social channels; re-importing a (day, channel) replaces its count.
-- Indexes for the report's date ranges on replies and on when messages were marked done.
CREATE TABLE contacts (
    day DATE NOT NULL,                    -- a local date
    channel TEXT NOT NULL,                -- e.g. phone, face_to_face, email
    count BIGINT NOT NULL CHECK (count >= 0),
    imported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, channel)
);

CREATE INDEX replies_created ON replies (created_at);
CREATE INDEX messages_done ON messages (done_at);

-- Announcements (issue 14): one text with optional per-channel versions, published once on each
-- channel at a wall-clock time. due_at is the instant computed when it was written; wall_time
-- and zone keep what the person typed, so a change in the zone's rules can be noticed.
CREATE TABLE announcements (
    id BIGSERIAL PRIMARY KEY,
    text TEXT NOT NULL,
    due_at TIMESTAMPTZ NOT NULL,
    wall_time TEXT NOT NULL,              -- 'YYYY-MM-DDTHH:MM', local time in `zone`
    zone TEXT NOT NULL,                   -- IANA zone, e.g. Europe/London
    written_by TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    approved_by TEXT,
    approved_at TIMESTAMPTZ,
    notice TEXT UNIQUE                    -- a notice drafted from the calendar: what it is for
);

-- One row per (announcement, channel). `publishing` is written before the platform is called:
-- a row left in it when its lease runs out may have been posted, so it becomes `unknown`.
CREATE TABLE announcement_posts (
    id BIGSERIAL PRIMARY KEY,
    announcement_id BIGINT NOT NULL REFERENCES announcements (id),
    channel TEXT NOT NULL,
    text TEXT,                            -- this channel's own version; NULL: the announcement's
    state TEXT NOT NULL CHECK (state IN ('draft', 'approval', 'scheduled', 'publishing',
        'published', 'failed', 'unknown', 'missed', 'held', 'cancelled')),
    not_before TIMESTAMPTZ NOT NULL,             -- due_at, or later after a retry or "publish now"
    holder TEXT,
    lease_until TIMESTAMPTZ,
    attempts BIGINT NOT NULL DEFAULT 0,
    platform_id TEXT,
    link TEXT,
    error TEXT,                           -- why it failed, in plain words
    published_at TIMESTAMPTZ,
    UNIQUE (announcement_id, channel)
);

CREATE INDEX announcement_posts_state ON announcement_posts (state, not_before);

-- Who wrote, approved, changed, published or cancelled what (the pre-election period's record).
CREATE TABLE announcement_log (
    id BIGSERIAL PRIMARY KEY,
    announcement_id BIGINT NOT NULL REFERENCES announcements (id),
    at TIMESTAMPTZ NOT NULL,
    who TEXT NOT NULL,                    -- a username, or "publisher" for the server
    action TEXT NOT NULL,
    channel TEXT,
    detail TEXT
);

CREATE INDEX announcement_log_announcement ON announcement_log (announcement_id, id);

-- Suspend holds every scheduled post, organisation-wide, while a row has no resumed_at.
CREATE TABLE announcement_suspensions (
    id BIGSERIAL PRIMARY KEY,
    reason TEXT NOT NULL,
    suspended_by TEXT NOT NULL,
    suspended_at TIMESTAMPTZ NOT NULL,
    resumed_by TEXT,
    resumed_at TIMESTAMPTZ
);

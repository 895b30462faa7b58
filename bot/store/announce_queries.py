"""The announcements' SQL, shared by both stores ($1 placeholders; SQLite rewrites them).

Claims follow the outbox's: a row is taken by one holder with a lease. The difference is what
happens when the lease runs out: an outbox row is sent again, a post in `publishing` is not
(the platform may have accepted it). On a channel that can look at its own account it is taken
for a check (CHECK): found, it is published; not there, it is due again; otherwise it becomes
`unknown` for a person to decide.
"""

from __future__ import annotations

ANNOUNCEMENT = """SELECT id, text, due_at, wall_time, zone, written_by, written_at, approved_by,
    approved_at, notice FROM announcements"""
POST = """SELECT p.id, p.announcement_id, p.channel, COALESCE(p.text, a.text), p.text IS NOT NULL,
    p.state, p.not_before, p.attempts, p.platform_id, p.link, p.error, p.published_at,
    p.claimed_at, p.checks, p.found_by_check
FROM announcement_posts p JOIN announcements a ON a.id = p.announcement_id"""
POST_COLUMNS = """id, announcement_id, channel,
    COALESCE(text, (SELECT a.text FROM announcements a WHERE a.id = announcement_id)),
    text IS NOT NULL, state, not_before, attempts, platform_id, link, error, published_at,
    claimed_at, checks, found_by_check"""

INSERT = """INSERT INTO announcements (text, due_at, wall_time, zone, written_by, written_at,
    notice) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"""
INSERT_POST = """INSERT INTO announcement_posts (announcement_id, channel, text, state, not_before)
VALUES ($1, $2, $3, $4, $5)"""
LOG = """INSERT INTO announcement_log (announcement_id, at, who, action, channel, detail)
VALUES ($1, $2, $3, $4, $5, $6)"""
BY_ID = f"{ANNOUNCEMENT} WHERE id = $1"
BY_NOTICE = f"{ANNOUNCEMENT} WHERE notice = $1"
POSTS_OF = f"{POST} WHERE p.announcement_id = $1 ORDER BY p.channel"
# Upcoming and recent: due since $1, soonest first.
SINCE = f"{ANNOUNCEMENT} WHERE due_at >= $1 ORDER BY due_at, id LIMIT $2"
LOG_OF = """SELECT announcement_id, at, who, action, channel, detail FROM announcement_log
WHERE announcement_id = $1 ORDER BY id"""

# A second admin approves: never the writer, only once.
APPROVE = """UPDATE announcements SET approved_by = $2, approved_at = $3
WHERE id = $1 AND written_by <> $2 AND approved_by IS NULL"""
APPROVED_POSTS = """UPDATE announcement_posts SET state = 'scheduled'
WHERE announcement_id = $1 AND state = 'approval'"""
CANCEL = """UPDATE announcement_posts SET state = 'cancelled', holder = NULL, lease_until = NULL
WHERE announcement_id = $1 AND state IN ('draft', 'approval', 'scheduled', 'held', 'missed',
    'unknown', 'failed') RETURNING channel"""
# A person decides to publish what was held, missed, unknown or failed: due now.
REPUBLISH = """UPDATE announcement_posts SET state = 'scheduled', not_before = $2, error = NULL
WHERE announcement_id = $1 AND state IN ('held', 'missed', 'unknown', 'failed')
RETURNING channel"""

SUSPENDED = """SELECT reason, suspended_by, suspended_at FROM announcement_suspensions
WHERE resumed_at IS NULL ORDER BY id LIMIT 1"""
SUSPEND = """INSERT INTO announcement_suspensions (reason, suspended_by, suspended_at)
SELECT $1, $2, $3 WHERE NOT EXISTS
    (SELECT 1 FROM announcement_suspensions WHERE resumed_at IS NULL)"""
RESUME = """UPDATE announcement_suspensions SET resumed_by = $1, resumed_at = $2
WHERE resumed_at IS NULL"""
# What fell due while suspended waits for a person.
HOLD = """UPDATE announcement_posts SET state = 'held'
WHERE state = 'scheduled' AND not_before <= $1 RETURNING announcement_id, channel"""

_NOT_SUSPENDED = "NOT EXISTS (SELECT 1 FROM announcement_suspensions WHERE resumed_at IS NULL)"
# Due now ($2), not later than the late limit ($4), nobody suspended everything.
DUE = f"""SELECT id FROM announcement_posts
WHERE state = 'scheduled' AND not_before <= $2 AND not_before > $4 AND {_NOT_SUSPENDED}
ORDER BY not_before, id LIMIT $5"""
# The "publishing" mark, written (and committed) before the platform is called.
CLAIM = """UPDATE announcement_posts SET state = 'publishing', holder = $1, lease_until = $3,
    attempts = attempts + 1, claimed_at = $2, checks = 0
WHERE id IN ({due}) RETURNING {columns}"""
# A lease that ran out under `publishing`: the holder died, maybe after the platform accepted.
LAPSED = f"""UPDATE announcement_posts SET state = 'unknown', lease_until = NULL,
    error = 'The server stopped while publishing: the post may or may not be on the account.'
WHERE state = 'publishing' AND lease_until <= $1 RETURNING {POST_COLUMNS}"""
# A lapsed "publishing" post on a channel that can look at its account ($4), taken by one holder
# for a check: the row stays "publishing", so LAPSED does not touch it while the check runs.
LAPSED_ON = """SELECT id FROM announcement_posts
WHERE state = 'publishing' AND lease_until <= $2 AND channel = $4 ORDER BY id LIMIT $5"""
# Whether LAPSED_ON would find any: asked with a read first, so a round with nothing to check
# takes no write lock (SQLite's writer, a transaction on PostgreSQL) and writes nothing.
ANY_LAPSED_ON = """SELECT EXISTS (SELECT 1 FROM announcement_posts
WHERE state = 'publishing' AND lease_until <= $1 AND channel = $2)"""
CHECK = """UPDATE announcement_posts SET holder = $1, lease_until = $3, checks = checks + 1
WHERE id IN ({lapsed}) AND state = 'publishing' AND lease_until <= $2
RETURNING {columns}"""
# The account could not be asked: asked again at $3, still "publishing".
CHECK_FAILED = """UPDATE announcement_posts SET lease_until = $3, error = $4
WHERE id = $1 AND holder = $2 AND state = 'publishing'"""
# The account could not be asked, time after time: a person decides.
UNKNOWN = """UPDATE announcement_posts SET state = 'unknown', lease_until = NULL, error = $3
WHERE id = $1 AND holder = $2 AND state = 'publishing'"""
# Due longer ago than the late limit ($1) and not suspended: missed, and the team is told.
MISSED = f"""UPDATE announcement_posts SET state = 'missed',
    error = 'The server was not running when it was due, and it is now too late to post.'
WHERE state = 'scheduled' AND not_before <= $1 AND {_NOT_SUSPENDED}
RETURNING {POST_COLUMNS}"""
# What the platform said is recorded whoever holds the row: it happened (even after "unknown").
# $6: it was found on the account by a check, not seen accepted.
PUBLISHED = """UPDATE announcement_posts SET state = 'published', platform_id = $3, link = $4,
    published_at = $5, error = NULL, holder = NULL, lease_until = NULL, found_by_check = $6
WHERE id = $1 AND holder = $2 AND state IN ('publishing', 'unknown')"""
FAILED = """UPDATE announcement_posts SET state = 'failed', error = $3, holder = NULL,
    lease_until = NULL
WHERE id = $1 AND holder = $2 AND state = 'publishing'"""
RETRY = """UPDATE announcement_posts SET state = 'scheduled', error = $3, not_before = $4,
    holder = NULL, lease_until = NULL
WHERE id = $1 AND holder = $2 AND state = 'publishing'"""

"""The SQL both stores share, written once with PostgreSQL's $1 placeholders.

SQLite reads the same text through `sqlite_placeholders`. What differs between the databases
(how the next id is taken, how a sender is locked) stays in each store's own module.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from bot.errors import StoreError


def sqlite_placeholders(sql: str) -> str:
    """$1 becomes ?1, which SQLite reads the same way."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


# The columns of a QueueItem, in its field order; the automatic reply is the first one kept.
ITEM = """SELECT m.id, m.reference, m.channel, m.platform_id, m.sender, m.sender_name, m.text,
    m.received_at, m.staffed, m.reply_by, m.emergency, m.redirect, m.team, m.language, m.template,
    (SELECT r.text FROM replies r WHERE r.message_id = m.id AND r.kind = 'auto'
     ORDER BY r.id LIMIT 1),
    m.done_at, m.done_by, m.first_human_reply_at, m.conversation, m.thread, m.assigned_to,
    m.held_back, COALESCE(m.matched LIKE 'possible:%', FALSE)
FROM messages m"""
# Most overdue first: open before done, emergencies first, then reply_by (none last).
ORDER = """ORDER BY m.done_at IS NOT NULL, m.emergency IS NULL, m.reply_by IS NULL, m.reply_by,
    m.received_at, m.id"""
BY_KEY = f"{ITEM} WHERE m.channel = $1 AND m.platform_id = $2"
BY_REFERENCE = f"{ITEM} WHERE m.reference = $1"
# A new message's random reference is drawn again while this finds it taken (see new_reference).
REFERENCE_TAKEN = "SELECT EXISTS (SELECT 1 FROM messages WHERE reference = $1)"
# $19 is the reply text, which the message row does not hold; $20 and $21 are where it goes.
INSERT_MESSAGE = """INSERT INTO messages (id, reference, channel, platform_id, sender, sender_name,
    text, received_at, staffed, reply_by, opens_at, emergency, redirect, team, language, template,
    matched, held_back, conversation, thread)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $20,
    $21)"""
INSERT_REPLY = """INSERT INTO replies (message_id, kind, template, text, author, created_at)
VALUES ($1, $2, $3, $4, $5, $6)"""
ACKNOWLEDGED = """INSERT INTO senders (channel, sender, last_ack_at, last_ack_template)
VALUES ($1, $2, $3, $4)
ON CONFLICT (channel, sender)
DO UPDATE SET last_ack_at = excluded.last_ack_at, last_ack_template = excluded.last_ack_template"""
DONE = "UPDATE messages SET done_at = $1, done_by = $2 WHERE reference = $3 AND done_at IS NULL"
REOPEN = "UPDATE messages SET done_at = NULL, done_by = NULL WHERE reference = $1"
FIRST_HUMAN_REPLY = "UPDATE messages SET first_human_reply_at = $1 WHERE id = $2"
COUNTS = """SELECT (SELECT COUNT(*) FROM messages WHERE done_at IS NULL),
    (SELECT COUNT(*) FROM messages WHERE done_at IS NOT NULL), (SELECT COUNT(*) FROM replies)"""
MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations
    (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"""


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of bot/store/migrations/<dialect>/, numbered from 1, no gaps.

    Both databases have the same versions: migration N makes the same change in each.
    """
    folder = resources.files("bot.store").joinpath("migrations").joinpath(dialect)
    try:
        found = sorted(
            (int(entry.name[:4]), entry.name, entry.read_text("utf-8"))
            for entry in folder.iterdir()
            if re.fullmatch(r"\d{4}_\w+\.sql", entry.name)
        )
    except OSError as e:
        raise StoreError(f"Cannot read the {dialect} migrations in {folder}: {e}") from e
    versions = [version for version, _, _ in found]
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise StoreError(
            f"The {dialect} migrations in {folder} are {versions}; expected 1, 2, 3... "
            f"(is bot/store/migrations/{dialect}/*.sql in the package data?)"
        )
    return found


def pending(current: int, latest: int, where: str, *, apply: bool) -> bool:
    """Whether migrations are to be applied now; raise StoreError when the schema cannot be used."""
    if current > latest:
        raise StoreError(
            f"The database {where} has schema version {current}, but this Holding Reply knows "
            f"versions up to {latest}. Upgrade Holding Reply, or restore a backup made by this "
            "version."
        )
    if current < latest and not apply:
        raise StoreError(
            f"The database {where} has schema version {current}; this Holding Reply needs "
            f"{latest}. Run `python -m bot migrate` (with AUTO_MIGRATE=0, nothing else changes the "
            "schema)."
        )
    return current < latest


# Data protection. Blanking keeps the row (ids, times, decisions) for the reports, and gives
# platform_id a unique stand-in so that the (channel, platform_id) key still holds.
_BLANK = "text = '', sender = '', sender_name = NULL, platform_id = 'erased-' || id"
_DUE_FOR_PURGE = "received_at < $1 AND done_at IS NOT NULL AND erased_at IS NULL"
PURGE_REPLIES = f"""UPDATE replies SET text = ''
WHERE message_id IN (SELECT id FROM messages WHERE {_DUE_FOR_PURGE})"""
PURGE_ORIGINALS = f"""DELETE FROM originals
WHERE message_id IN (SELECT id FROM messages WHERE {_DUE_FOR_PURGE})"""
PURGE_MESSAGES = f"UPDATE messages SET {_BLANK}, erased_at = $2 WHERE {_DUE_FOR_PURGE}"
# A sender's row only matters for the cooldown; an opt-out is kept, as the person asked.
PURGE_SENDERS = """DELETE FROM senders
WHERE NOT opted_out AND (last_ack_at IS NULL OR last_ack_at < $1)"""
ERASE_REPLIES = """UPDATE replies SET text = ''
WHERE message_id IN (SELECT id FROM messages WHERE channel = $1 AND sender = $2)"""
ERASE_ORIGINALS = """DELETE FROM originals
WHERE message_id IN (SELECT id FROM messages WHERE channel = $1 AND sender = $2)"""
ERASE_MESSAGES = f"""UPDATE messages SET {_BLANK}, erased_at = $3
WHERE channel = $1 AND sender = $2"""
ERASE_SENDER = "DELETE FROM senders WHERE channel = $1 AND sender = $2"
EXPORT_ITEMS = f"{ITEM} WHERE m.channel = $1 AND m.sender = $2 ORDER BY m.received_at, m.id"
EXPORT_REPLIES = """SELECT r.message_id, r.kind, r.template, r.text, r.author, r.created_at
FROM replies r JOIN messages m ON m.id = r.message_id
WHERE m.channel = $1 AND m.sender = $2 ORDER BY r.id"""
EXPORT_SENDER = """SELECT last_ack_at, last_ack_template, opted_out FROM senders
WHERE channel = $1 AND sender = $2"""

# Jobs: $1 name, $2 holder, $3 lease until, $4 now, $5 due if last finished at or before this.
JOB_ROW = "INSERT INTO jobs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
JOB_DUE = """name = $1 AND (lease_until IS NULL OR lease_until <= $4)
    AND (last_finished_at IS NULL OR last_finished_at <= $5)"""
JOB_CLAIM = "UPDATE jobs SET holder = $2, lease_until = $3, last_started_at = $4 WHERE {where}"
JOB_FINISH = """UPDATE jobs SET holder = NULL, lease_until = NULL, last_finished_at = $3
WHERE name = $1 AND holder = $2"""
JOB_RELEASE = "UPDATE jobs SET holder = NULL, lease_until = NULL WHERE holder = $1"
OUTBOX_RELEASE = """UPDATE outbox SET holder = NULL, lease_until = NULL
WHERE holder = $1 AND state = 'pending'"""
OPT_OUT = """INSERT INTO senders (channel, sender, opted_out) VALUES ($1, $2, $3)
ON CONFLICT (channel, sender) DO UPDATE SET opted_out = excluded.opted_out"""

# The outbox. Claiming: $1 holder, $2 now, $3 lease until, $4 how many, $5 the targets to skip
# (a JSON list of [channel, recipient] pairs; a null recipient skips the whole channel): those
# the claiming sender is busy with, so that a slow target's rows wait in the table, not in memory.
DELIVERY = """id, message_id, channel, recipient, kind, text, priority, state, attempts,
    next_attempt_at, last_error, platform_message_id, created_at, sent_at, reply_to,
    (SELECT m.reference FROM messages m WHERE m.id = outbox.message_id)"""
ENQUEUE = f"""INSERT INTO outbox (message_id, channel, recipient, kind, text, priority,
    next_attempt_at, created_at, reply_to)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING {DELIVERY}"""
DUE_DELIVERIES = """SELECT id FROM outbox
WHERE state = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
    AND NOT EXISTS ({skipped})
ORDER BY priority DESC, next_attempt_at, id LIMIT $4"""
CLAIM_DELIVERIES = """UPDATE outbox SET holder = $1, lease_until = $3, attempts = attempts + 1
WHERE id IN ({due}) RETURNING {columns}"""
# A sender still sending (a slow target) keeps what it holds: its leases never run out under it.
RENEW_LEASES = "UPDATE outbox SET lease_until = $2 WHERE holder = $1 AND state = 'pending'"
# A send that happened is recorded whoever holds the row now; the others need the lease.
DELIVERED = """UPDATE outbox SET state = 'sent', sent_at = $2, platform_message_id = $3,
    holder = NULL, lease_until = NULL, last_error = NULL, send_started_at = $4
WHERE id = $1 AND state = 'pending'"""
RETRY_LATER = """UPDATE outbox SET next_attempt_at = $4, last_error = $3, holder = NULL,
    lease_until = NULL
WHERE id = $1 AND holder = $2 AND state = 'pending'"""
GIVE_UP = """UPDATE outbox SET state = 'dead', last_error = $3, holder = NULL, lease_until = NULL
WHERE id = $1 AND holder = $2 AND state = 'pending'"""
# The platform accepted a reply and later said it could not deliver it (a WhatsApp "failed"
# status): a dead letter after all. (A partial index on (channel, platform_message_id) would
# make this cheaper on a large outbox; failed statuses are rare.)
NOT_DELIVERED = """UPDATE outbox SET state = 'dead', last_error = $3
WHERE channel = $1 AND platform_message_id = $2 AND state = 'sent'"""
DELIVERIES = f"SELECT {DELIVERY} FROM outbox WHERE state = $1 ORDER BY id LIMIT $2"

# Receipts: the platform delivered a sent reply, or the person read it, at $3. Each time keeps
# the earliest reported and a read sets delivered too, so delivered_at <= read_at always, and
# a receipt that comes late, twice or out of order changes nothing it should not. Rows that
# already know as much are not rewritten.


def _receipt(read: bool) -> tuple[str, str]:
    """(SET ..., the condition for a row to change) for a delivered or a read receipt."""
    columns = ["delivered_at", "read_at"] if read else ["delivered_at"]
    sets = ", ".join(
        f"{c} = CASE WHEN {c} IS NULL OR {c} > $3 THEN $3 ELSE {c} END" for c in columns
    )
    return sets, f"({columns[-1]} IS NULL OR {columns[-1]} > $3)"


# By the platform's id for it ($2). A read covers the replies sent to the same person before it
# too: reading one shows the conversation up to it.
RECEIPT = {
    read: f"""UPDATE outbox SET {_receipt(read)[0]}
WHERE state = 'sent' AND {_receipt(read)[1]} AND id IN (
    SELECT o.id FROM outbox r JOIN outbox o ON o.channel = r.channel AND o.recipient = r.recipient
    WHERE r.channel = $1 AND r.platform_message_id = $2 AND r.state = 'sent' AND o.state = 'sent'
        AND {"o.sent_at <= r.sent_at" if read else "o.id = r.id"})"""
    for read in (False, True)
}
# By a watermark ($4): every reply to the person ($2) that Meta's time can be at or before it.
RECEIPTS_UNTIL = {
    read: f"""UPDATE outbox SET {_receipt(read)[0]}
WHERE channel = $1 AND recipient = $2 AND state = 'sent' AND {_receipt(read)[1]}
    AND COALESCE(send_started_at, sent_at) <= $4"""
    for read in (False, True)
}
# The team tries a dead letter again (the person unblocked the bot): a fresh set of attempts.
REVIVE = """UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2,
    holder = NULL, lease_until = NULL
WHERE id = $1 AND state = 'dead'"""

# Channels' own small state (cursors such as X's since_id).
# The message as the platform delivered it (a raw mail), kept for the team.
INSERT_ORIGINAL = "INSERT INTO originals (message_id, content) VALUES ($1, $2)"
GET_ORIGINAL = "SELECT content FROM originals WHERE message_id = $1"
GET_STATE = "SELECT value FROM channel_state WHERE channel = $1 AND key = $2"
SET_STATE = """INSERT INTO channel_state (channel, key, value) VALUES ($1, $2, $3)
ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value"""
# An edited message: the queue shows the latest text; nothing is sent again.
EDIT_TEXT = """UPDATE messages SET text = $3
WHERE channel = $1 AND platform_id = $2 AND erased_at IS NULL"""

# Alerts. An item is alerted to its team once (alerted_at), and warned about once before it
# breaks its promise (breach_alerted_at).
UNALERTED = f"""{ITEM} WHERE m.done_at IS NULL AND m.alerted_at IS NULL AND m.received_at <= $1
ORDER BY m.received_at, m.id"""
MARK_ALERTED = "UPDATE messages SET alerted_at = $2 WHERE id = $1 AND alerted_at IS NULL"
NEAR_BREACH = f"""{ITEM} WHERE m.done_at IS NULL AND m.first_human_reply_at IS NULL
    AND m.breach_alerted_at IS NULL AND m.reply_by IS NOT NULL AND m.reply_by <= $1
ORDER BY m.reply_by, m.id"""
MARK_BREACH_ALERTED = """UPDATE messages SET breach_alerted_at = $2
WHERE id = $1 AND breach_alerted_at IS NULL"""

# People and sessions.
USER = """SELECT u.id, u.username, u.display_name, u.role, u.created_at, u.disabled_at,
    u.password_hash FROM users u"""
ADD_USER = """INSERT INTO users (username, display_name, role, password_hash, created_at)
VALUES ($1, $2, $3, $4, $5) RETURNING id"""
ADD_TEAM = "INSERT INTO user_teams (user_id, team) VALUES ($1, $2)"
CLEAR_TEAMS = "DELETE FROM user_teams WHERE user_id = $1"
TEAMS_OF = "SELECT user_id, team FROM user_teams ORDER BY team"
USER_BY_NAME = f"{USER} WHERE u.username = $1"
USER_BY_ID = f"{USER} WHERE u.id = $1"
ALL_USERS = f"{USER} ORDER BY u.username"
SET_PASSWORD = "UPDATE users SET password_hash = $2 WHERE id = $1"
DISABLE_USER = "UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL"
END_SESSIONS_OF = "DELETE FROM sessions WHERE user_id = $1"
ADD_SESSION = """INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5)"""
SESSION = """SELECT s.user_id, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"""
END_SESSION = "DELETE FROM sessions WHERE token_hash = $1"
END_EXPIRED_SESSIONS = "DELETE FROM sessions WHERE expires_at <= $1"
ADD_LOGIN_FAILURE = "INSERT INTO login_failures (key, at) VALUES ($1, $2)"
COUNT_LOGIN_FAILURES = "SELECT COUNT(*) FROM login_failures WHERE key = $1 AND at > $2"
CLEAR_LOGIN_FAILURES = "DELETE FROM login_failures WHERE key = $1 OR at <= $2"

# The inbox.
CLAIM = "UPDATE messages SET assigned_to = $2 WHERE reference = $1"
REASSIGN = "UPDATE messages SET team = $2, assigned_to = NULL WHERE reference = $1"
ADD_NOTE = """INSERT INTO notes (message_id, author, text, created_at)
SELECT id, $2, $3, $4 FROM messages WHERE reference = $1"""
NOTES = """SELECT n.id, n.message_id, n.author, n.text, n.created_at FROM notes n
JOIN messages m ON m.id = n.message_id WHERE m.reference = $1 ORDER BY n.id"""
# With each reply's receipts: its outbox row was written with it, with the same message, kind
# and time (none for a reply that was only recorded, such as one to the web form).
REPLIES_OF = """SELECT r.message_id, r.kind, r.template, r.text, r.author, r.created_at,
    o.delivered_at, o.read_at
FROM replies r JOIN messages m ON m.id = r.message_id
LEFT JOIN outbox o ON o.id = (SELECT MIN(x.id) FROM outbox x WHERE x.message_id = r.message_id
    AND x.kind = r.kind AND x.created_at = r.created_at)
WHERE m.reference = $1 ORDER BY r.id"""
HISTORY = f"""{ITEM} WHERE m.channel = $1 AND m.sender = $2 AND m.reference <> $3
    AND m.erased_at IS NULL
ORDER BY m.received_at DESC, m.id DESC LIMIT 20"""


def inbox(
    teams: list[str] | None, channel: str | None, status: str, limit: int
) -> tuple[str, list[object]]:
    """The inbox's query: teams None means every team (an admin); "default" means no team."""
    where: list[str] = []
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    if status == "open":
        where.append("m.done_at IS NULL")
    elif status == "done":
        where.append("m.done_at IS NOT NULL")
    if channel is not None:
        where.append(f"m.channel = {param(channel)}")
    if teams is not None:
        named = [t for t in teams if t != "default"]
        either = [f"m.team IN ({', '.join(param(t) for t in named)})"] if named else []
        if "default" in teams:
            either.append("m.team IS NULL")
        where.append(f"({' OR '.join(either)})" if either else "1 = 0")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return f"{ITEM} {clause} {ORDER} LIMIT {param(limit)}", params


# Reports, for messages received in [$1, $2). Counts are grouped by channel and team in the
# database, once, and added up into the whole, per channel and per team by collect_figures.
_IN_RANGE = "m.received_at >= $1 AND m.received_at < $2"
_FIRST_REPLY_WHERE = f"{_IN_RANGE} AND m.first_human_reply_at IS NOT NULL"
REPORT_MESSAGES = f"""SELECT m.channel, m.team, COUNT(*),
    SUM(CASE WHEN m.staffed THEN 0 ELSE 1 END),
    SUM(CASE WHEN m.emergency IS NOT NULL AND NOT COALESCE(m.matched LIKE 'possible:%', FALSE)
        THEN 1 ELSE 0 END),
    SUM(CASE WHEN m.redirect IS NOT NULL THEN 1 ELSE 0 END),
    COUNT(m.first_human_reply_at),
    COUNT(m.reply_by),
    SUM(CASE WHEN m.first_human_reply_at <= m.reply_by THEN 1 ELSE 0 END),
    SUM(CASE WHEN m.emergency IS NOT NULL AND COALESCE(m.matched LIKE 'possible:%', FALSE)
        THEN 1 ELSE 0 END)
FROM messages m WHERE {_IN_RANGE} GROUP BY m.channel, m.team"""
# Replies sent in the range (automatic and human), whenever their message arrived.
REPORT_REPLIES = """SELECT m.channel, m.team, SUM(CASE WHEN r.kind = 'auto' THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.kind = 'human' THEN 1 ELSE 0 END)
FROM replies r JOIN messages m ON m.id = r.message_id
WHERE r.created_at >= $1 AND r.created_at < $2 GROUP BY m.channel, m.team"""
# Open at the start of the range: received before it, and not done before it.
REPORT_OPEN_AT = """SELECT COUNT(*) FROM messages
WHERE received_at < $1 AND (done_at IS NULL OR done_at >= $1)"""
REPORT_CONTACTS = """SELECT day, channel, count FROM contacts
WHERE day >= $1 AND day < $2 ORDER BY day, channel"""
IMPORT_CONTACT = """INSERT INTO contacts (day, channel, count, imported_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (day, channel)
DO UPDATE SET count = excluded.count, imported_at = excluded.imported_at"""
# What each database writes its own way: the time a first human reply took, in seconds; the
# answered messages' instants as seconds since 1970 (for working time, which needs the
# calendar); the percentiles (PostgreSQL has percentile_cont, SQLite ranks rows with a window).
# Percentiles are not added up: each grouping is computed. Rows: grouping ("all", "channel" or
# "team"), group, median, 90th percentile.
_TEAM = "COALESCE(m.team, 'default')"
_SECONDS = "EXTRACT(EPOCH FROM m.first_human_reply_at - m.received_at)::float8"
PG_PERCENTILES = f"""SELECT CASE WHEN GROUPING(m.channel) = 0 THEN 'channel'
        WHEN GROUPING({_TEAM}) = 0 THEN 'team' ELSE 'all' END,
    COALESCE(m.channel, {_TEAM}, 'all'),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY {_SECONDS}),
    percentile_cont(0.9) WITHIN GROUP (ORDER BY {_SECONDS})
FROM messages m WHERE {_FIRST_REPLY_WHERE}
GROUP BY GROUPING SETS ((), (m.channel), ({_TEAM}))"""
PERCENTILES = (0.5, 0.9)


def percentile_ranks(count: int, p: float) -> tuple[int, int, float]:
    """percentile_cont(p) of `count` sorted values is the value at position p * (count - 1),
    counting from 0, interpolated linearly with the next: (its rank, the next's, counting from
    1, and how far between them)."""
    position = p * (count - 1)
    low = int(position)
    return low + 1, min(low + 2, count), position - low


def sqlite_percentiles(
    answered: dict[tuple[str, str], int],
) -> tuple[str, list[str], list[tuple[str, str]]]:
    """SQLite has no percentile_cont: one sort of the answered messages by their first reply
    time, with a running count of each group's rows (a window per group, all over the same
    order), returns only the rows at the ranks percentile_ranks names for each group.

    answered: (grouping, group) -> how many answered messages it has (from REPORT_MESSAGES).
    Returns the SQL, its parameters after $1 and $2, and the (grouping, group) of each running
    count, in the order of the columns that follow c, tm and s."""
    params: list[str] = []
    columns: list[str] = []
    wanted: list[str] = []
    keys: list[tuple[str, str]] = []
    for (by, group), count in sorted(answered.items()):
        if not count:
            continue
        n = f"n{len(keys)}"
        if by == "all":
            columns.append(f"ROW_NUMBER() OVER w AS {n}")
            where = ""
        else:
            params.append(group)
            where = f"{'c' if by == 'channel' else 'tm'} = ${len(params) + 2}"
            columns.append(f"COUNT(*) FILTER (WHERE {where}) OVER w AS {n}")
            where += " AND "
        ranks = sorted({r for p in PERCENTILES for r in percentile_ranks(count, p)[:2]})
        wanted.append(f"({where}{n} IN ({', '.join(map(str, ranks))}))")
        keys.append((by, group))
    if not keys:
        return "SELECT $1, $2 WHERE 0", params, keys
    sql = f"""SELECT * FROM (SELECT c, tm, s, {", ".join(columns)} FROM (
    SELECT m.channel AS c, {_TEAM} AS tm,
        (julianday(m.first_human_reply_at) - julianday(m.received_at)) * 86400.0 AS s
    FROM messages m WHERE {_FIRST_REPLY_WHERE})
    WINDOW w AS (ORDER BY s ROWS UNBOUNDED PRECEDING))
WHERE {" OR ".join(wanted)}"""
    return sql, params, keys


PG_FIRST_REPLIES = f"""SELECT m.channel, m.team, EXTRACT(EPOCH FROM m.received_at)::float8,
    EXTRACT(EPOCH FROM m.first_human_reply_at)::float8
FROM messages m WHERE {_FIRST_REPLY_WHERE}"""
SQLITE_FIRST_REPLIES = f"""SELECT m.channel, m.team,
    (julianday(m.received_at) - 2440587.5) * 86400.0,
    (julianday(m.first_human_reply_at) - 2440587.5) * 86400.0
FROM messages m WHERE {_FIRST_REPLY_WHERE}"""
# Local time: PostgreSQL converts with its time zone database ($3 is the zone's name). SQLite has
# none, so it counts per UTC hour ('YYYY-MM-DDTHH', a few thousand buckets a year, not rows) and
# the store converts each bucket to local time.
PG_HOURS = f"""SELECT EXTRACT(ISODOW FROM m.received_at AT TIME ZONE $3)::int - 1,
    EXTRACT(HOUR FROM m.received_at AT TIME ZONE $3)::int, COUNT(*)
FROM messages m WHERE {_IN_RANGE} GROUP BY 1, 2"""
PG_RECEIVED_DAYS = f"""SELECT (m.received_at AT TIME ZONE $3)::date, COUNT(*)
FROM messages m WHERE {_IN_RANGE} GROUP BY 1"""
PG_DONE_DAYS = """SELECT (m.done_at AT TIME ZONE $3)::date, COUNT(*)
FROM messages m WHERE m.done_at >= $1 AND m.done_at < $2 GROUP BY 1"""
SQLITE_RECEIVED_HOURS = f"""SELECT substr(m.received_at, 1, 13), COUNT(*)
FROM messages m WHERE {_IN_RANGE} GROUP BY 1"""
SQLITE_DONE_HOURS = """SELECT substr(m.done_at, 1, 13), COUNT(*)
FROM messages m WHERE m.done_at >= $1 AND m.done_at < $2 GROUP BY 1"""


def sqlite_percentile_rows(
    rows: list[Any], keys: list[tuple[str, str]], answered: dict[tuple[str, str], int]
) -> list[tuple[str, str, float | None, float | None]]:
    """(grouping, group, median, 90th) from the rows of sqlite_percentiles' query."""
    at: dict[tuple[str, str, int], float] = {}
    for row in rows:
        channel, team, seconds = row[0], row[1], row[2]
        for (by, group), rank in zip(keys, row[3:], strict=True):
            if by == "all" or group == (channel if by == "channel" else team):
                at[by, group, rank] = seconds
    out: list[tuple[str, str, float | None, float | None]] = []
    for by, group in keys:
        values: list[float | None] = []
        for p in PERCENTILES:
            low, high, fraction = percentile_ranks(answered[by, group], p)
            a, b = at.get((by, group, low)), at.get((by, group, high))
            values.append(None if a is None or b is None else a + fraction * (b - a))
        out.append((by, group, values[0], values[1]))
    return out


# Rules and templates, as versions.
_RULES_COLUMNS = "SELECT id, files, author, note, source, created_at FROM rules_versions"
RULES_LATEST = "SELECT COALESCE(MAX(id), 0) FROM rules_versions"
RULES_BY_ID = f"{_RULES_COLUMNS} WHERE id = $1"
RULES_NEWEST = f"{_RULES_COLUMNS} ORDER BY id DESC LIMIT 1"
RULES_NEWEST_FROM = f"{_RULES_COLUMNS} WHERE source = $1 ORDER BY id DESC LIMIT 1"
RULES_LIST = f"{_RULES_COLUMNS} ORDER BY id DESC LIMIT $1"
RULES_ADD = """INSERT INTO rules_versions (id, files, author, note, source, created_at)
VALUES ($1, $2, $3, $4, $5, $6)"""

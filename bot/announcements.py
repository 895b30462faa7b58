"""Writing announcements: from what a person typed (the CLI, a CSV line, the inbox's form) to a
checked NewAnnouncement, and approving one. Every problem is found at once, named by its field.

Times are read by bot.moments.read_time, the one reader of typed times: a wall-clock time in
the organisation's zone, or a time with an offset. A time the clocks skip, or one that happens
twice (01:30 on the night the clocks go back), is refused with the offsets to write instead:
which 01:30 is meant is the writer's to say, never ours to guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.announcement import AnnouncementError, NewAnnouncement
from bot.channels.posting import LIMITS, too_long
from bot.config import Rules
from bot.errors import HoldingReplyError
from bot.moments import read_time
from bot.store import Store


@dataclass(frozen=True, slots=True)
class Mistake:
    field: str  # "when", "channels", "text" or "<channel>_text"
    message: str

    def __str__(self) -> str:
        said = self.message.startswith(self.field)  # read_time names the field itself
        return self.message if said else f"{self.field}: {self.message}"


class NotWritten(AnnouncementError):
    """An announcement with mistakes; `mistakes` has every one, by field."""

    def __init__(self, mistakes: list[Mistake]) -> None:
        self.mistakes = mistakes
        super().__init__("\n".join(str(m) for m in mistakes))


def channels_that_post(rules: Rules) -> list[str]:
    """The channels an announcement may name: those that can post and are not switched off."""
    return [name for name in LIMITS if rules.channel(name).enabled]


def compose(
    rules: Rules,
    *,
    when: str,
    channels: str,
    text: str,
    versions: Mapping[str, str] | None = None,
    by: str,
    now: datetime,
    notice: str | None = None,
) -> NewAnnouncement:
    """Check everything and return the announcement to store; raise NotWritten otherwise."""
    mistakes: list[Mistake] = []
    due_at: datetime | None = None
    try:
        due_at = read_time(when, rules.timezone, "when")
    except HoldingReplyError as exc:
        mistakes.append(Mistake("when", str(exc)))
    if due_at is not None and due_at < now:
        local = due_at.astimezone(rules.timezone)
        mistakes.append(Mistake("when", f"{local:%Y-%m-%d %H:%M} has passed; give a later time"))
    allowed = channels_that_post(rules)
    names = [c.strip().lower() for c in channels.split(",") if c.strip()]
    if not names:
        mistakes.append(Mistake("channels", f"name at least one of {', '.join(allowed)}"))
    for name in names:
        if name not in allowed:
            mistakes.append(
                Mistake("channels", f"{name!r} cannot post; the channels are {', '.join(allowed)}")
            )
    if len(set(names)) != len(names):
        mistakes.append(Mistake("channels", "a channel is named twice"))
    own = {k.lower(): v.strip() for k, v in (versions or {}).items() if v and v.strip()}
    for name in own:
        if name not in names:
            mistakes.append(Mistake(f"{name}_text", f"{name} is not one of this one's channels"))
    text = text.strip()
    for name in (n for n in names if n in allowed):
        body = own.get(name) or text
        where = f"{name}_text" if name in own else "text"
        if not body:
            mistakes.append(Mistake(where, f"nothing to post on {name}: the text is empty"))
        elif (why := too_long(name, body)) is not None:
            mistakes.append(Mistake(where, f"too long for {name}: {why}"))
    if mistakes or due_at is None:
        raise NotWritten(mistakes)
    wall = due_at.astimezone(rules.timezone).strftime("%Y-%m-%dT%H:%M")
    state = "approval" if rules.announcements.approval else "scheduled"
    return NewAnnouncement(
        text or own[names[0]],
        due_at,
        wall,
        rules.timezone.key,
        tuple((name, own.get(name)) for name in dict.fromkeys(names)),
        by,
        state,
        notice,
    )


async def approve(store: Store, aid: int, by: str, now: datetime) -> None:
    """A second admin approves; raise AnnouncementError saying why not otherwise."""
    found = await store.user(by)
    if found is None or not found[0].active or found[0].role != "admin":
        raise AnnouncementError(f"{by!r} is not an admin: only an admin can approve")
    announcement = await store.announcement(aid)
    if announcement is None:
        raise AnnouncementError(f"there is no announcement {aid}")
    if announcement.written_by == by:
        raise AnnouncementError(f"{by} wrote announcement {aid}: a different admin must approve it")
    if announcement.approved_by is not None:
        raise AnnouncementError(f"{announcement.approved_by} has already approved it")
    if not await store.approve_announcement(aid, by, now):
        raise AnnouncementError(f"announcement {aid} could not be approved; list it to see why")

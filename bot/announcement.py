"""What an announcement is: one text, optional per-channel versions, a time, a state per channel.

Values only: the store keeps them (bot/store/announce_*.py), bot/announcements.py writes them
from what a person typed, and bot/publisher.py publishes them once on each channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.errors import HoldingReplyError

# A post's states, in the words the list and the inbox show.
STATES: dict[str, str] = {
    "draft": "draft",
    "approval": "waiting for approval",
    "scheduled": "scheduled",
    "publishing": "publishing",
    "published": "published",
    "failed": "failed",
    "unknown": "unknown: may have been posted; check the account, then publish or cancel",
    "missed": "missed: the server was down when it was due",
    "held": "held: fell due while suspended; publish or cancel",
    "cancelled": "cancelled",
}
# A post whose process died mid-publish and that a check then found on the account: published,
# but nobody saw the platform accept it, so a person may want to look at it.
FOUND = "published: found on the account by a check after the server stopped while publishing"
# What a person may still cancel, and what "publish now" may send again.
CANCELLABLE = ("draft", "approval", "scheduled", "held", "missed", "unknown", "failed")
REPUBLISHABLE = ("held", "missed", "unknown", "failed")


class AnnouncementError(HoldingReplyError):
    """An announcement cannot be written, approved or changed as asked; the text says why."""


@dataclass(frozen=True, slots=True)
class Post:
    """One announcement on one channel."""

    id: int
    announcement_id: int
    channel: str
    text: str  # what goes out: the channel's own version, else the announcement's text
    own_text: bool  # the channel has a version of its own
    state: str
    not_before: datetime
    attempts: int = 0
    platform_id: str | None = None
    link: str | None = None
    error: str | None = None
    published_at: datetime | None = None
    claimed_at: datetime | None = None  # when it was last taken to be published
    checks: int = 0  # how many times the account was looked at after its holder's lease ran out
    found_by_check: bool = False  # published: found on the account, not seen accepted

    @property
    def state_words(self) -> str:
        """Its state as the list and the inbox show it."""
        if self.state == "published" and self.found_by_check:
            return FOUND
        return STATES.get(self.state, self.state)


@dataclass(frozen=True, slots=True)
class Announcement:
    id: int
    text: str
    due_at: datetime  # the instant computed when it was written, UTC
    wall_time: str  # what the clock on the wall says then: "2027-12-24T09:00"
    zone: str
    written_by: str
    written_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    notice: str | None  # drafted from the calendar: which closure or holiday it is for
    posts: tuple[Post, ...] = ()

    def drifted(self) -> bool:
        """The zone's rules changed since it was written: the wall time is another instant now."""
        wall = datetime.fromisoformat(self.wall_time).replace(tzinfo=ZoneInfo(self.zone))
        return wall != self.due_at


@dataclass(frozen=True, slots=True)
class NewAnnouncement:
    """An announcement checked and ready to store."""

    text: str
    due_at: datetime
    wall_time: str
    zone: str
    versions: tuple[tuple[str, str | None], ...]  # (channel, its own text or None)
    written_by: str
    state: str  # "scheduled", "approval" or "draft"
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    announcement_id: int
    at: datetime
    who: str
    action: str
    channel: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Suspension:
    reason: str
    suspended_by: str
    suspended_at: datetime

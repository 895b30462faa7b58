"""The exceptions the library raises; only the CLI turns them into exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class HoldingReplyError(Exception):
    """Base class for every error Holding Reply raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the rules or the templates, said so a comms officer can fix it."""

    file: str
    where: str  # "line 12" or a dotted key path such as "hours.monday"
    message: str

    def __str__(self) -> str:
        where = f":{self.where}" if self.where else ""
        return f"{self.file}{where}: {self.message}"


class RulesError(HoldingReplyError):
    """rules.toml or a template is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StoreError(HoldingReplyError):
    """The database could not be reached or refused the write; the caller should retry later."""


class BadRequest(HoldingReplyError):
    """An inbound message was malformed; the text says what to change."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)

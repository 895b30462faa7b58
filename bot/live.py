"""The rules in force in a running process: the newest version in the database, followed.

Which wins, the files or the database? Whichever changed last. The database holds every
version, and the newest is in force. The files (RULES_FILE, or ./rules.toml, and its templates)
become a new version when they differ from what was last stored from them: when the database
has none yet, when they were edited (noticed within WATCH_SECONDS, or at once on SIGHUP), and
when a process starts with files a deploy changed. A restart with the same files changes
nothing, so what comms staff saved in the browser survives a dyno's daily restart.

Every process asks the database for the newest version's number every POLL_SECONDS (one
indexed query), on SQLite and PostgreSQL alike, and loads a new one within a few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import UTC, datetime
from pathlib import Path

from bot.check import load
from bot.errors import Problem, RulesError, StoreError
from bot.logs import flush_logs
from bot.store import Stale, Store
from bot.triage import Triage
from bot.versions import FILE_AUTHOR, RULES, Folders, load_files, read_files, response_folders, save
from bot.web import State

log = logging.getLogger("bot.live")

POLL_SECONDS = 1.0
WATCH_SECONDS = 2.0


def watched_files(rules_path: Path, dirs: tuple[Path, ...]) -> dict[Path, int]:
    """Modification times of rules.toml and every template, to notice an edit."""
    out: dict[Path, int] = {}
    for path in [rules_path, *(p for d in dirs for p in d.glob("*/*.txt"))]:
        try:
            out[path] = path.stat().st_mtime_ns
        except OSError:
            continue
    return out


def settle() -> None:
    """Put what is alive now, the rules in force above all, out of the garbage collector's sight.

    The rules (compiled phrase lists, weights, templates) are tens of thousands of objects that
    live until the next change of rules, and every full collection traverses them all (30 ms to
    several hundred on the development machine, measured while rules loaded; under steady load
    full collections were rare, so this is insurance for the p99, not a measured gain). Frozen
    objects are still freed by reference counting; unfreezing first lets one collection free
    the cycles of the rules replaced.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Live:
    """Loads the newest version into `state.triage`, and keeps doing so."""

    def __init__(self, store: Store, rules_path: Path) -> None:
        self.store = store
        self.rules_path = rules_path
        self.folders = Folders()
        self.version = 0
        self.file_dirs: tuple[Path, ...] = ()
        # The files' modification times as they were when last read: an edit made after that,
        # even before the watch loop starts, is noticed.
        self.seen: dict[Path, int] = {}

    async def start(self) -> Triage:
        """The rules to start with. Raises RulesError when there are none that pass `check`."""
        try:
            pushed = await self.push_files("start")
        except RulesError:
            if not await self.store.latest_rules_version():
                raise  # nothing stored and the files are invalid: nothing to run with
            pushed = None
        if pushed is not None:  # loaded from the very files just stored: no need to again
            return pushed
        latest = await self.store.latest_rules_version()
        triage = await self._load(latest)
        if triage is None:  # _load logged each problem
            raise RulesError([Problem("the database", "", f"version {latest} cannot be used: "
                                      "see the problems logged above, then restore or push "
                                      "a version that passes python -m bot check")])  # fmt: skip
        return triage

    async def push_files(self, why: str) -> Triage | None:
        """Store the files as a new version if they changed since they were last stored, and
        return them loaded (None when nothing was stored). Raises RulesError (logged here too)
        when they do not pass `check`."""
        try:
            before = watched_files(self.rules_path, self.file_dirs)
            files = await asyncio.to_thread(read_files, self.rules_path)
            self.file_dirs = tuple(
                (self.rules_path.parent / f).resolve() for f in response_folders(files[RULES])
            )
            self.seen = {**watched_files(self.rules_path, self.file_dirs), **before}
            newest = await self.store.rules_version()
            if newest is not None and newest.files == files:
                return None
            last = await self.store.rules_version(source="file")
            if newest is not None and last is not None and last.files == files:
                return None  # the browser's version is newer than these files: it stays
            triage = await asyncio.to_thread(load, self.rules_path)  # messages name the files
        except RulesError as exc:
            for problem in exc.problems:
                log.error("rules not reloaded", extra={"problem": str(problem), "trigger": why})
            raise
        first = newest is None
        note = "the first version, from the files" if first else f"the files changed ({why})"
        try:
            version, _ = await save(
                self.store,
                files,
                author=FILE_AUTHOR,
                note=note,
                source="file",
                based_on=newest.id if newest else 0,
                at=datetime.now(UTC),
                checked=triage,
            )
        except Stale:
            return None  # another process stored them (or something else) first
        self.version = version.id
        return triage

    async def _load(self, version: int) -> Triage | None:
        found = await self.store.rules_version(version)
        if found is None:
            return None
        folder = self.folders.new(found.id)
        try:
            triage = await asyncio.to_thread(load_files, found.files, folder, check=False)
        except RulesError as exc:
            self.folders.discard(folder)
            for problem in exc.problems:
                log.error("rules not reloaded", extra={"problem": str(problem), "version": version})
            self.version = found.id  # not again and again
            return None
        self.version = found.id
        return triage

    async def refresh(self, state: State, why: str) -> bool:
        """Load the newest version into `state` if it is not the one in force."""
        latest = await self.store.latest_rules_version()
        if latest == self.version:
            return False
        triage = await self._load(latest)
        if triage is None:
            return False
        self._swap(state, triage, why)
        return True

    def _swap(self, state: State, triage: Triage, why: str) -> None:
        state.triage = triage
        state.rules_version = self.version
        state.loaded_at = datetime.now(UTC)
        settle()
        log.info("rules reloaded", extra={"trigger": why, "version": self.version})

    async def reload(self, state: State, why: str) -> None:
        """SIGHUP, or an edit noticed: the files, if they changed, else the newest version."""
        try:
            pushed = await self.push_files(why)
        except (RulesError, StoreError):
            pushed = None
        if pushed is not None:
            self._swap(state, pushed, why)
            return
        try:
            await self.refresh(state, why)
        except StoreError as exc:
            log.warning("rules not reloaded", extra={"error": str(exc), "trigger": why})

    async def follow(self, state: State) -> None:
        """Until cancelled: the newest version every POLL_SECONDS, the files every
        WATCH_SECONDS."""
        seen = self.seen or watched_files(self.rules_path, self.file_dirs)
        ticks = 0
        every = max(1, round(WATCH_SECONDS / POLL_SECONDS))
        while True:
            await asyncio.sleep(POLL_SECONDS)
            ticks += 1
            if ticks % every == 0:
                flush_logs()
                now = watched_files(self.rules_path, self.file_dirs)
                if now != seen:
                    seen = self.seen = now
                    await self.reload(state, "file changed")
                    continue
            try:
                await self.refresh(state, "new version")
            except StoreError as exc:
                log.warning("rules not reloaded", extra={"error": str(exc)})

    def close(self) -> None:
        self.folders.close()

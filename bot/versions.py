"""Rules versions: rules.toml and its templates as one set of texts, checked before it is stored.

A version is stored as a mapping from a path relative to rules.toml's folder ("rules.toml",
"responses/en/bio.txt", "../../responses/en/bio.txt") to the file's text. To check or use one,
the texts are written to a folder of their own and loaded exactly as `python -m bot check`
loads files, so a version is accepted by the same checks and read by the same code.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli

from bot.check import load
from bot.config import CHANNELS, load_rules
from bot.errors import Problem, RulesError
from bot.models import Outgoing
from bot.responses import Responses
from bot.store import RulesVersion, Store
from bot.triage import Triage

log = logging.getLogger("bot.versions")

RULES = "rules.toml"
MAX_RULES = 512 * 1024  # characters of rules.toml; the example council's is about 46,000
MAX_TEMPLATE = 16 * 1024  # characters of one template; the longest shipped is under 1,000
MAX_FILES = 400
# A template's place: optional leading "../", folders, then <language>/<name>.txt.
_TEMPLATE = re.compile(r"(?:\.\./)*(?:[A-Za-z0-9_.-]+/)*[a-z]{2}/[A-Za-z0-9_-]+(?:\.[a-z]+)?\.txt")
FILE_AUTHOR = "the rules file"


def templates(files: Mapping[str, str]) -> list[str]:
    """The template paths of a version, in order."""
    return sorted(name for name in files if name != RULES)


def response_folders(rules_text: str) -> list[str]:
    """organisation.responses as written, or the default; a broken file gives the default."""
    try:
        org = tomli.loads(rules_text).get("organisation", {})
    except tomli.TOMLDecodeError:
        return ["responses"]
    folders: Any = org.get("responses", "responses") if isinstance(org, dict) else "responses"
    if isinstance(folders, str):
        folders = [folders]
    if not isinstance(folders, list):
        return ["responses"]
    return [f for f in folders if isinstance(f, str)]


def read_files(rules_path: Path) -> dict[str, str]:
    """rules.toml and every template in its folders, as a version's texts."""
    try:
        text = rules_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(
            [Problem(str(rules_path), "", "file not found; pass --rules FILE or set RULES_FILE")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([Problem(str(rules_path), "", f"cannot read the file: {exc}")]) from None
    files = {RULES: text}
    for folder in response_folders(text):
        base = rules_path.parent / folder
        # An absolute folder is kept under the path that climbs to it; it is still read from
        # that absolute place, so only a relative folder (the default) can be edited as text.
        rel = (
            os.path.relpath(base.resolve(), rules_path.parent.resolve())
            if base.is_dir()
            else folder
        )
        rel = posixpath.normpath(rel.replace(os.sep, "/"))
        for path in sorted(base.glob("*/*.txt")):
            name = f"{rel}/{path.parent.name}/{path.name}"
            files.setdefault(name, path.read_text(encoding="utf-8"))
    return files


def shape_problems(files: Mapping[str, str]) -> list[Problem]:
    """Sizes and names, checked before anything is written to disk."""
    problems: list[Problem] = []
    if RULES not in files:
        problems.append(Problem(RULES, "", "missing: a version needs rules.toml"))
    if len(files) > MAX_FILES:
        problems.append(Problem(RULES, "", f"{len(files)} files; at most {MAX_FILES}"))
    for name, text in files.items():
        limit = MAX_RULES if name == RULES else MAX_TEMPLATE
        if name != RULES and not _TEMPLATE.fullmatch(name):
            problems.append(
                Problem(name, "", "not a template's name: expected <folder>/<language>/<name>.txt")
            )
        elif len(text) > limit:
            problems.append(
                Problem(name, "", f"{len(text):,} characters long; at most {limit:,} allowed")
            )
        elif "\x00" in text:
            problems.append(Problem(name, "", "contains a NUL character"))
    return problems


def write_files(files: Mapping[str, str], folder: Path) -> Path:
    """Write a version's texts under `folder`; returns where rules.toml is. Paths that climb
    ("../../responses") stay inside `folder`: rules.toml goes that many folders down."""
    depth = max((name.count("../") for name in files), default=0)
    rules_dir = folder.joinpath(*(["r"] * depth)) if depth else folder
    rules_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = Path(os.path.normpath(rules_dir / name))
        if not path.is_relative_to(folder):
            raise RulesError([Problem(name, "", "outside the rules folder")])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return rules_dir / RULES


def _relative(problems: list[Problem], rules_dir: Path) -> list[Problem]:
    """Problems named as the person wrote the files: "rules.toml", "responses/en/bio.txt"."""
    out = []
    for p in problems:
        name = p.file
        if os.path.isabs(name):
            name = os.path.relpath(name, rules_dir).replace(os.sep, "/")
        out.append(Problem(name, p.where, p.message))
    return out


def load_files(files: Mapping[str, str], folder: Path, *, check: bool = True) -> Triage:
    """Write the texts under `folder` and load them as `check` does; RulesError names the
    files as they are written in the version. check=False, for a version that passed the
    checks when it was stored, skips rendering every template (a second or more)."""
    problems = shape_problems(files)
    if problems:
        raise RulesError(problems)
    rules_path = write_files(files, folder)
    try:
        if not check:
            rules = load_rules(rules_path)
            return Triage(rules, Responses(rules.response_dirs, rules.timezone))
        return load(rules_path)
    except RulesError as exc:
        raise RulesError(_relative(exc.problems, rules_path.parent)) from None


def check_files(files: Mapping[str, str]) -> Triage:
    """The same checks as `python -m bot check`, on texts; raises RulesError."""
    with tempfile.TemporaryDirectory(prefix="holding-reply-check-") as folder:
        triage = load_files(files, Path(folder))
        # Compile every template now, while the files are there: the Triage is used afterwards
        # (to preview a draft) and must not look for them on disk again.
        for file in triage.responses.files():
            for chan in [file.channel] if file.channel else CHANNELS:
                triage.responses.find(file.language, file.name, chan)
        return triage


@dataclass(frozen=True, slots=True)
class FileDiff:
    name: str
    lines: list[str]  # unified diff lines, without the ---/+++ header


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> list[FileDiff]:
    """What changed from one version to the next, file by file."""
    out = []
    for name in sorted(set(old) | set(new), key=lambda n: (n != RULES, n)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        lines = list(
            difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(), lineterm="", n=2)
        )[2:]
        if a is None:
            lines.insert(0, "(new file)")
        elif b is None:
            lines = ["(file removed)"]
        out.append(FileDiff(name, lines))
    return out


def summary_of(old: Mapping[str, str] | None, new: Mapping[str, str]) -> str:
    """A few words on what changed: "rules.toml and 2 templates"."""
    if old is None:
        return "rules.toml and every template"
    changed = [d.name for d in diff(old, new)]
    if not changed:
        return "nothing (the same as the version before)"
    parts = ["rules.toml"] if RULES in changed else []
    count = len([c for c in changed if c != RULES])
    if count:
        parts.append(changed[-1] if count == 1 else f"{count} templates")
    return " and ".join(parts)


async def save(
    store: Store,
    files: Mapping[str, str],
    *,
    author: str,
    note: str,
    source: str,
    based_on: int,
    at: datetime,
    announce: str | None = None,
    checked: Triage | None = None,
) -> tuple[RulesVersion, Triage]:
    """Check the texts, then store them as the version after `based_on`; raise RulesError
    (nothing stored) or bot.store.Stale (someone else saved first; nothing stored).

    The change is announced once, to the new rules' default alert routes: `announce`, or
    "<author> changed <what>: <note>" (the first version, which changes nothing, is not).
    `checked`: the same texts, already loaded and checked from files."""
    triage = checked if checked is not None else await asyncio.to_thread(check_files, files)
    before = await store.rules_version(based_on) if based_on else None
    version = await store.add_rules_version(files, author, note, source, based_on, at)
    what = summary_of(before.files if before else None, files)
    text = announce or f"{author} changed {what} (version {version.id})"
    if not announce and note:
        text += f": {note}"
    for route in triage.rules.alerts.default if based_on else ():  # not the very first
        await store.enqueue(Outgoing(route.kind, route.target, "alert", text), at)
    log.info("rules version saved", extra={"version": version.id, "source": source})
    return version, triage


class Folders:
    """Where this process keeps the texts of the versions it has loaded: the newest two, so a
    reply being written with the previous rules still finds its templates."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="holding-reply-rules-"))
        self.kept: list[Path] = []

    def new(self, version: int) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=self.base))
        self.kept.append(folder)
        while len(self.kept) > 2:
            shutil.rmtree(self.kept.pop(0), ignore_errors=True)
        return folder

    def discard(self, folder: Path) -> None:
        if folder in self.kept:
            self.kept.remove(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

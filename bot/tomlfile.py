"""Reading a TOML file so that every later complaint can name the line it is about."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli

from bot.errors import Problem, RulesError

Key = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


@dataclass
class TomlDocument:
    """A parsed TOML file plus a map from dotted key path to the line it was written on."""

    path: Path
    data: dict[str, Any]
    lines: dict[Key, int] = field(default_factory=dict)

    def line_of(self, key: Key) -> int | None:
        """The line of `key`, or of the nearest enclosing table that has one."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None

    def problem(self, key: Key, message: str) -> Problem:
        line = self.line_of(key)
        return Problem(str(self.path), str(line) if line else "", f"{dotted(key)}: {message}")


def dotted(key: Key) -> str:
    """`("closures", 0, "from")` as people read it: `closures[1].from` (counting from one)."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out


def _locate(text: str) -> dict[Key, int]:
    """Find the line of every table and key; good enough for error messages, not a parser."""
    lines: dict[Key, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: Key = ()
    in_multiline = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if in_multiline:
            if stripped.count('"""') % 2 == 1 or stripped.count("'''") % 2 == 1:
                in_multiline = False
            continue
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(raw)
        if header and not _ASSIGN.match(raw):
            names = tuple(_split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = arrays.get(names, -1) + 1
                arrays[names] = index
                table = (*names, index)
            else:
                table = names
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(raw)
        if assign:
            key = (*table, *_split_dotted(assign.group(1)))
            lines.setdefault(key, number)
            rest = raw[assign.end() :]
            if rest.count('"""') == 1 or rest.count("'''") == 1:
                in_multiline = True
    return lines


def read_toml(path: Path) -> TomlDocument:
    """Parse `path` with tomli, or raise RulesError that names the file and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RulesError(
            [Problem(str(path), "", "file not found; pass --rules FILE or set RULES_FILE")]
        ) from None
    except OSError as exc:
        raise RulesError(
            [Problem(str(path), "", f"cannot read the file: {exc.strerror}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesError(
            [Problem(str(path), str(line), "the file is not UTF-8 text; save it as UTF-8")]
        ) from None
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        lineno = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", str(exc))
        hint = _decode_hint(text, lineno)
        raise RulesError(
            [Problem(str(path), str(lineno or ""), f"not valid TOML: {message}{hint}")]
        ) from None
    return TomlDocument(path, data, _locate(text))


def _decode_hint(text: str, lineno: int | None) -> str:
    if not lineno:
        return ""
    line = text.splitlines()[lineno - 1] if lineno <= len(text.splitlines()) else ""
    if "=" in line:
        value = line.split("=", 1)[1].strip()
        literal = re.match(r"""^(["'\[{#]|true\b|false\b|[+-]?\d|inf\b|nan\b)""", value)
        if value and not literal:
            return f' (text values need quotes: {line.split("=", 1)[0].strip()} = "{value}")'
    return ""

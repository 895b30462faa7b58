"""The words of the public pages in each language: gettext catalogues, read from .po files.

English is written in the page template and in bot/web.py; every other language is a .po
file in bot/locale/<language>/LC_MESSAGES/, which a translator edits. The .po is read with
Babel's own reader when a page is first asked for in that language (and again when the file
changes), so there is no compile step to forget on a PaaS build. Babel is imported only then:
an English-only server never loads it.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from bot.errors import Problem

PACKAGE = Path(__file__).parent
LOCALE = PACKAGE / "locale"
DOMAIN = "messages"
TEMPLATES = PACKAGE / "web_templates"
# Where the public pages' strings are written, for the missing-strings check and pybabel
# (babel.cfg says the same).
PAGE_SOURCES = (PACKAGE / "web.py", TEMPLATES / "message-us.html")
JINJA_OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "newstyle_gettext": "true",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
}
NAMES = {"en": "English", "cy": "Cymraeg"}  # each language's name in itself, for the switch


def po_path(language: str, locale: Path = LOCALE) -> Path:
    return locale / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read_po(path: Path, language: str) -> Any:
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        return read_po(f, locale=language)


def load(language: str, locale: Path = LOCALE) -> gettext.NullTranslations:
    """The catalogue of one language; English (or a language with no .po) says the source."""
    path = po_path(language, locale)
    if language == "en" or not path.exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    compiled = io.BytesIO()
    write_mo(compiled, _read_po(path, language))  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def strong(value: Any) -> Markup:
    """For a value inside a translated sentence that the page shows in bold."""
    return Markup("<strong>{}</strong>").format(value)


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: int
    translations: gettext.NullTranslations
    env: jinja2.Environment


_PAGES: dict[tuple[str, Path], _Loaded] = {}


def _loaded(language: str, locale: Path) -> _Loaded:
    path = po_path(language, locale)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    loaded = _PAGES.get((language, locale))
    if loaded is None or loaded.stamp != stamp:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        translations = load(language, locale)
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        env.filters["strong"] = strong
        loaded = _PAGES[(language, locale)] = _Loaded(stamp, translations, env)
    return loaded


def pages(language: str, locale: Path = LOCALE) -> jinja2.Environment:
    """The public pages' templates with one language's catalogue installed.

    Built once, and again when the .po file changes, so a translator's edit shows without a
    restart.
    """
    return _loaded(language, locale).env


def gettext_for(language: str, locale: Path = LOCALE) -> Callable[[str], str]:
    """`_` for the strings bot/web.py writes (errors): the same catalogue as the pages."""
    return _loaded(language, locale).translations.gettext


# What a translator has still to do.


def source_messages() -> Iterator[tuple[str, str]]:
    """(English string, where it is written) for every string of the public pages."""
    from babel.messages.extract import extract
    from jinja2.ext import babel_extract

    for source in PAGE_SOURCES:
        method: Any = "python" if source.suffix == ".py" else babel_extract
        options = {} if source.suffix == ".py" else JINJA_OPTIONS
        with source.open("rb") as f:
            for lineno, message, _comments, _context in extract(method, f, options=options):
                if isinstance(message, str):
                    yield message, f"{source.relative_to(PACKAGE.parent)}:{lineno}"


def missing(language: str, locale: Path = LOCALE) -> list[Problem]:
    """Every string of the public pages with no translation (or only a fuzzy one) in the .po."""
    path = po_path(language, locale)
    if not path.exists():
        return [Problem(str(path), "", "no catalogue: every public page would be in English")]
    catalog = _read_po(path, language)
    problems: list[Problem] = []
    seen: set[str] = set()
    for message, where in source_messages():
        if message in seen:
            continue
        seen.add(message)
        entry = catalog.get(message)
        if entry is None or not entry.string or entry.fuzzy:
            state = "only a fuzzy translation" if entry is not None and entry.fuzzy else "missing"
            problems.append(Problem(str(path), "", f"{state}: {message!r} (from {where})"))
    return problems

"""Interface strings (site chrome, form, mail) from gettext catalogs.

Translators edit ordinary ``.po`` files under ``outreach/locale/<lang>/LC_MESSAGES/``;
they are compiled in memory with Babel when first used, so there is no build step to
forget and no stale ``.mo`` file to ship. ``pybabel extract`` finds the strings by the
mapping in ``outreach/locale/babel.cfg``, which uses ``extract_in_context`` below.

An agency adds or changes strings in its own folder, ``agencies/<id>/locale/<lang>/
LC_MESSAGES/messages.po``: its translations are laid over the kit's, so the kit's catalogs
stay untouched and a new kit release merges without conflicts.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

import jinja2.ext
from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from outreach.languages import catalog_languages

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

Extracted = tuple[int, str, Any, list[str]]
# The extraction methods extract_in_context can wrap, by their names in babel.cfg.
_EXTRACTORS: dict[str, Callable[..., Iterator[Any]]] = {
    "python": extract_python,
    "jinja2": jinja2.ext.babel_extract,
}
# Calls that mark one message and name no context.
_PLAIN = frozenset({"_", "gettext", "N_"})


def catalog_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    """Where the catalog of *lang* is (``zh-Hant`` in ``zh_Hant/``), whether or not it exists."""
    return locale_dir / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def kit_catalog_path(lang: str) -> Path | None:
    """The kit's catalog for *lang*: its own, else its language's (pt-BR reads pt)."""
    for code in catalog_languages(lang):
        path = catalog_path(code)
        if path.is_file():
            return path
    return None


def read_catalog(path: Path, lang: str) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=lang.replace("-", "_"))


def agency_catalog_path(lang: str, agency_locale: Path | None) -> Path | None:
    """The agency's own catalog of *lang*, if it has one."""
    if agency_locale is None:
        return None
    path = catalog_path(lang, agency_locale)
    return path if path.is_file() else None


def merged_catalog(lang: str, agency_locale: Path | None = None) -> Catalog:
    """The kit's catalog of *lang*, with every string the agency's catalog translates over it."""
    kit = kit_catalog_path(lang)
    catalog = read_catalog(kit, lang) if kit is not None else Catalog(locale=_babel_code(lang))
    overlay = agency_catalog_path(lang, agency_locale)
    if overlay is not None:
        for message in read_catalog(overlay, lang):
            if message.id and translated(message):
                # Setting a message Babel already has would keep its old translation.
                catalog.delete(message.id, context=message.context)
                catalog[message.id] = message
    return catalog


def translations(lang: str, agency_locale: Path | None = None) -> gettext.NullTranslations:
    """Translations for *lang*: the agency's strings from *agency_locale* over the kit's,
    and the English source strings for whatever neither translates."""
    overlay = agency_catalog_path(lang, agency_locale)
    # The file's time is part of the key: a catalog edited between two builds is re-read.
    changed = overlay.stat().st_mtime_ns if overlay is not None else 0
    return _compiled(lang, agency_locale if overlay is not None else None, changed)


@functools.cache
def _compiled(lang: str, agency_locale: Path | None, _changed: int) -> gettext.NullTranslations:
    if kit_catalog_path(lang) is None and agency_locale is None:
        return gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, merged_catalog(lang, agency_locale))
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def translated(message: Message) -> bool:
    """True when every form of *message* has a translation a reader would see."""
    if message.fuzzy:
        return False
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(forms)


def _babel_code(lang: str) -> str | None:
    try:
        return str(Locale.parse(lang.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return None


def N_(message: str) -> str:
    """Marks *message* for extraction where it is written; it is translated where it is shown."""
    return message


def extract_in_context(
    fileobj: IO[bytes], keywords: Any, comment_tags: Collection[str], options: dict[str, Any]
) -> Iterator[Extracted]:
    """A Babel extraction method: another method's messages, each with a fixed context.

    For sources whose ``_`` is ``pgettext`` with its context bound in advance (the mail
    templates and labels), so that no call names the context. babel.cfg names the wrapped
    method as ``method`` and the context as ``context``; other options go to the method.
    """
    options = dict(options)
    extract = _EXTRACTORS[options.pop("method")]
    context = options.pop("context")
    for lineno, funcname, message, comments in extract(fileobj, keywords, comment_tags, options):
        if funcname in _PLAIN and isinstance(message, str):
            yield lineno, "pgettext", (context, message), comments
        else:
            yield lineno, funcname, message, comments

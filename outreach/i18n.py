"""Interface strings (site chrome, form, mail) from gettext catalogs.

Translators edit ordinary ``.po`` files under ``outreach/locale/<lang>/LC_MESSAGES/``;
they are compiled in memory with Babel when first used, so there is no build step to
forget and no stale ``.mo`` file to ship. ``pybabel extract`` finds the strings by the
mapping in ``outreach/locale/babel.cfg``, which uses ``extract_in_context`` below.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

import jinja2.ext
from babel.messages.extract import extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

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


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """Translations for *lang*; English source strings when no catalog exists."""
    path = catalog_path(lang)
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


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

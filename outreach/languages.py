"""Language codes: which are valid, which read right to left, what they are called."""

from __future__ import annotations

import functools
import re

from babel import Locale, UnknownLocaleError

_CODE = re.compile(r"^([a-z]{2,3})(?:-([A-Z][a-z]{3}|[A-Z]{2}))?$")
# Scripts written right to left, for languages CLDR may not describe fully.
_RTL_FALLBACK = {"ar", "fa", "he", "ur", "ps", "yi", "dv", "ckb", "sd", "ug"}


@functools.cache
def _known_languages() -> frozenset[str]:
    return frozenset(Locale("en").languages)


def is_valid_language(code: str) -> bool:
    """True for an ISO 639 code CLDR knows, optionally with a script or region (pt-BR)."""
    match = _CODE.match(code)
    return bool(match) and match is not None and match.group(1) in _known_languages()


def _locale(code: str) -> Locale | None:
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


def is_rtl(code: str) -> bool:
    locale = _locale(code)
    if locale is not None:
        return bool(locale.character_order == "right-to-left")
    return code.split("-")[0] in _RTL_FALLBACK


def native_name(code: str) -> str:
    """The language's name in itself ("Español"), for the language switcher."""
    locale = _locale(code)
    if locale is not None and locale.display_name:
        name = str(locale.display_name)
        return name[:1].upper() + name[1:]
    english = Locale("en").languages.get(code.split("-")[0])
    return str(english) if english else code


def name_in(code: str, reader: str) -> str:
    """The name of language *code* as a reader of *reader* writes it ("inglés" in Spanish)."""
    locale = _locale(reader) or Locale("en")
    name = locale.languages.get(code.replace("-", "_")) or locale.languages.get(code.split("-")[0])
    return str(name) if name else native_name(code)

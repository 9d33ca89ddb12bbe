"""Language codes: which are valid, which read right to left, what they are called."""

from __future__ import annotations

import functools
import re

from babel import Locale, UnknownLocaleError

_CODE = re.compile(r"^([a-z]{2,3})(?:-([A-Z][a-z]{3}|[A-Z]{2}))?$")
# Scripts written right to left, for languages CLDR may not describe fully.
_RTL_FALLBACK = {"ar", "fa", "he", "ur", "ps", "yi", "dv", "ckb", "sd", "ug"}

# The kit's interface catalogs (outreach/locale/) are named by these codes. Chinese follows
# Material for MkDocs: "zh" is Simplified Chinese and "zh-Hant" Traditional Chinese. Other
# codes an agency may write for the same written language read the same catalog.
_SAME_WRITING = {
    "zh-Hans": "zh",
    "zh-CN": "zh",
    "zh-SG": "zh",
    "zh-TW": "zh-Hant",
    "zh-HK": "zh-Hant",
    "zh-MO": "zh-Hant",
}
# What a reader calls the language in the language switcher, where CLDR's name would be
# unclear beside the others ("中文" for both Chinese scripts) or a different language
# (CLDR describes Tagalog as Filipino).
_OWN_NAMES = {
    "zh": "简体中文",
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
    "tl": "Tagalog",
}


def catalog_languages(code: str) -> list[str]:
    """The catalogs that can serve *code*, best first: zh-TW reads zh-Hant, pt-BR reads pt."""
    candidates = [code, _SAME_WRITING.get(code, code), code.split("-")[0]]
    return list(dict.fromkeys(candidates))


def theme_language(code: str, available: set[str]) -> str:
    """The Material for MkDocs language for *code*, from the ones it has (*available*).

    *code* itself when the theme has it; otherwise the same writing (zh-Hans is zh) or the
    language without its region (es-MX is es); otherwise *code*, for which the site supplies
    its own partial."""
    for candidate in catalog_languages(code):
        if candidate in available:
            return candidate
    return code


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
    if code in _OWN_NAMES:
        return _OWN_NAMES[code]
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

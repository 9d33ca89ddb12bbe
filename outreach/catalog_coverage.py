"""Which interface strings a person who reports sees, and which of them a language still lacks.

"Tipster-facing" strings are every string of the kit except those that only the staff
pages show: the site's header and call-to-action, the report form, the receipt, the status
page, error pages and the messages partners receive. They are found the way ``pybabel
extract`` finds them (outreach/locale/babel.cfg), from the kit's own files, so a string
added to the code is counted the moment it exists, with no list to keep up to date.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from outreach.assets import kit_root
from outreach.i18n import LOCALE_DIR, merged_catalog, translated
from outreach.profile import Profile

MessageKey = tuple[str | None, str]
"""(msgctxt, msgid); a plural message by its singular."""

# Folders whose strings only the staff see, as the sources are named from the kit's top.
STAFF_SOURCES = ("templates/staff/", "form_service/staff/")
# The language the strings are written in: it needs no catalog.
SOURCE_LANGUAGE = "en"


def _package_folder(name: str) -> Path:
    # Located, not imported: reading the service's source files needs no part of it.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the kit's package {name} is missing; reinstall the outreach kit")
    return Path(next(iter(spec.submodule_search_locations)))


def _sources() -> dict[str, Path]:
    """The folders ``pybabel extract`` reads (guide/languages.md), by their names in the kit."""
    return {
        "outreach": _package_folder("outreach"),
        "form_service": _package_folder("form_service"),
        "templates": kit_root() / "templates",
    }


@functools.cache
def tipster_strings() -> tuple[MessageKey, ...]:
    """The strings a person who reports may see, in the order the kit's sources give them."""
    with (LOCALE_DIR / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    places: dict[MessageKey, list[str]] = {}
    for name, folder in _sources().items():
        for filename, _, message, _, context in extract_from_dir(folder, method_map, options_map):
            singular = message if isinstance(message, str) else message[0]
            if singular:
                places.setdefault((context, singular), []).append(f"{name}/{filename}")
    return tuple(
        key
        for key, files in places.items()
        if not all(file.startswith(STAFF_SOURCES) for file in files)
    )


@dataclass(frozen=True)
class LanguageGap:
    """The tipster-facing strings one language of a profile shows in English."""

    lang: str
    missing: tuple[MessageKey, ...]
    total: int


def missing_strings(lang: str, agency_locale: Path | None = None) -> LanguageGap:
    wanted = tipster_strings()
    catalog = merged_catalog(lang, agency_locale)
    missing = []
    for context, msgid in wanted:
        message = catalog.get(msgid, context=context)
        if message is None or not translated(message):
            missing.append((context, msgid))
    return LanguageGap(lang, tuple(missing), len(wanted))


def language_gaps(profile: Profile) -> list[LanguageGap]:
    """Each language of *profile* that still shows some tipster-facing string in English."""
    gaps = []
    for lang in profile.languages:
        if lang.split("-")[0] == SOURCE_LANGUAGE:
            continue
        gap = missing_strings(lang, profile.interface_locale)
        if gap.missing:
            gaps.append(gap)
    return gaps

"""Interface strings (site chrome, form, mail) from gettext catalogs.

Translators edit ordinary ``.po`` files under ``outreach/locale/<lang>/LC_MESSAGES/``;
they are compiled in memory with Babel when first used, so there is no build step to
forget and no stale ``.mo`` file to ship.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def has_catalog(lang: str) -> bool:
    return catalog_path(lang).is_file()


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

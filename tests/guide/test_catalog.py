"""The guide's `pybabel extract` finds every interface string the kit translates.

A translator who starts a language from the extracted template (guide/languages.md) should
get every string the existing catalogs translate, with the same context, or part of the
site, form or mail would stay in English for that language.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from outreach.i18n import LOCALE_DIR
from tests.conftest import REPO

PYBABEL = str(Path(sys.executable).with_name("pybabel"))


def _keys(catalog: Catalog) -> set[tuple[str | None, str]]:
    return {
        (message.context, message.id if isinstance(message.id, str) else message.id[0])
        for message in catalog
        if message.id
    }


def extracted(tmp_path: Path) -> Catalog:
    template = tmp_path / "messages.pot"
    mapping = str(LOCALE_DIR / "babel.cfg")
    sources = ["outreach", "form_service", "templates"]
    subprocess.run(
        [PYBABEL, "-q", "extract", "-F", mapping, "-o", str(template), *sources],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with template.open("rb") as pot:
        return read_po(pot)


def test_extraction_finds_the_site_and_form_strings(tmp_path: Path) -> None:
    found = _keys(extracted(tmp_path))
    assert (None, "Report a concern") in found
    assert (None, "Our partners") in found
    assert len(found) > 100


def test_mail_strings_are_extracted_with_the_mail_context(tmp_path: Path) -> None:
    found = _keys(extracted(tmp_path))
    assert ("mail", "New report %(ref)s") in found  # a mail template
    assert ("mail", "Name") in found  # a _() call in the mail code
    assert ("mail", "What happened") in found  # a label marked with N_()
    assert (None, "What happened") not in found
    assert (None, "Translation coming") in found


@pytest.mark.parametrize(
    "catalog", sorted(LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")), ids=lambda p: p.parts[-3]
)
def test_extraction_finds_every_string_the_catalogs_translate(
    catalog: Path, tmp_path: Path
) -> None:
    with catalog.open("rb") as po:
        translated = _keys(read_po(po))
    missing = sorted(translated - _keys(extracted(tmp_path)), key=str)
    assert not missing, f"{len(missing)} strings are not extracted, e.g. {missing[:3]}"

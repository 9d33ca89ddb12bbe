"""Every interface string of the report service has a Spanish translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from outreach.i18n import catalog_path

REPO = Path(__file__).resolve().parents[2]
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}


def service_msgids() -> set[str]:
    """The strings of the report service's pages, the staff pages among them."""
    ids: set[str] = set()
    for folder in ("form", "staff"):
        for template in sorted((REPO / "templates" / folder).glob("*.html")):
            found = extract_from_file("jinja2.ext:babel_extract", str(template), options=JINJA)
            ids |= {message for _, message, _, _ in found}
    for package in ("form_service", "form_service/staff"):
        for module in sorted((REPO / package).glob("*.py")):
            ids |= {message for _, message, _, _ in extract_from_file("python", str(module))}
    return ids


def test_extraction_finds_the_strings() -> None:
    ids = service_msgids()
    assert {"Send report", "Your receipt code", "Tell us what happened or what you noticed."} <= ids
    assert {"Sign in", "Danger now: not yet acknowledged", "Close with an outcome"} <= ids
    assert len(ids) > 80


@pytest.mark.parametrize("lang", ["es"])
def test_every_string_is_translated(lang: str) -> None:
    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    translated = {m.id for m in catalog if m.id and m.string and not m.context}
    assert sorted(map(str, service_msgids() - translated)) == []


def test_placeholders_survive_translation() -> None:
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po, locale="es")
    ids = service_msgids()
    for message in catalog:
        if message.id and message.id in ids:
            # A plural message is a tuple: every form keeps the placeholders of the first.
            source = message.id if isinstance(message.id, str) else message.id[0]
            forms = [message.string] if isinstance(message.string, str) else message.string
            names = set(re.findall(r"%\((\w+)\)s", source))
            for form in forms:
                assert set(re.findall(r"%\((\w+)\)s", form)) == names, message.id

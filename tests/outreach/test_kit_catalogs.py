"""Every catalog the kit ships reads cleanly, keeps each placeholder and tag of its source,
has its language's plural forms, and translates every string a person who reports sees."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from outreach.catalog_coverage import missing_strings
from outreach.i18n import LOCALE_DIR
from tests.guide.guide_text import guide_pages

CATALOGS = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
# %(name)s and %% (Python), {name} (str.format and Jinja's own), and markup tags.
_TOKENS = re.compile(r"%\(\w+\)[sd]|%%|\{\w+\}|</?[a-z][^>]*>")


def _code(path: Path) -> str:
    return path.parts[-3].replace("_", "-")


def _read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=path.parts[-3], abort_invalid=True)


def tokens(text: str) -> list[str]:
    return sorted(_TOKENS.findall(text))


def forms(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


@pytest.mark.parametrize("path", CATALOGS, ids=_code)
def test_translations_keep_every_placeholder_and_tag(path: Path) -> None:
    wrong = []
    for message in _read(path):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = {tuple(tokens(i)) for i in ids}
        for form in forms(message):
            if form and tuple(tokens(form)) not in expected:
                wrong.append((ids[0], form))
    assert not wrong, f"{len(wrong)} entries change a placeholder, e.g. {wrong[:2]}"


# gettext's number of plural forms, where a language has one answer: Arabic's six
# (zero, one, two, few, many, other), one form for languages that do not inflect for number.
PLURALS = {"ar": 6, "ru": 3, "vi": 1, "zh": 1, "zh-Hant": 1, "ko": 1}


@pytest.mark.parametrize("path", CATALOGS, ids=_code)
def test_plural_forms_are_the_languages(path: Path) -> None:
    catalog = _read(path)
    count = catalog.num_plurals
    assert count == PLURALS.get(_code(path), count), catalog.plural_forms
    choose = gettext.c2py(catalog.plural_expr)
    assert {choose(n) for n in range(1000)} == set(range(count)), "each form is used"
    for message in catalog:
        if message.id and message.pluralizable and any(forms(message)):
            assert len(forms(message)) == count, message.id


@pytest.mark.parametrize("path", CATALOGS, ids=_code)
def test_every_tipster_facing_string_is_translated(path: Path) -> None:
    gap = missing_strings(_code(path))
    assert not gap.missing, f"{len(gap.missing)} missing, e.g. {gap.missing[:3]}"


@pytest.mark.parametrize("path", CATALOGS, ids=_code)
def test_the_guide_says_who_reviewed_each_catalog(path: Path) -> None:
    text = next(p for p in guide_pages() if p.name == "languages.md").read_text("utf-8")
    assert re.search(rf"^\| [^|]+ \| `{re.escape(_code(path))}` \| [^|]+ \|$", text, re.M)

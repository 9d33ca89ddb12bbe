"""A new agency with English, Vietnamese and Arabic: the site builds, and every page a person
who reports sees from the service (form, its errors, receipt, status page) is in the reader's
language, with no English interface string left on it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from outreach.catalog_coverage import tipster_strings
from outreach.i18n import translations
from outreach.loader import LoadedProfile, load_profile
from outreach.scaffold import scaffold_agency
from outreach.site.sitegen import build_site
from tests.conftest import edit_yaml, fill_placeholders

from .conftest import code_of, start_client, submit, token_of

LANGUAGES = ["en", "vi", "ar"]
AREA = "whole-jurisdiction"  # the one area of a new agency
_SHOWN_ATTRIBUTES = {"placeholder", "aria-label", "title", "alt", "content"}
# An input's value is shown on a button; elsewhere it is data (an option's id, the code).
_BUTTONS = {"submit", "button", "reset"}


class _Text(HTMLParser):
    """What a reader (or a screen reader) gets of a page: its text and its shown attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        shown = set(_SHOWN_ATTRIBUTES)
        if dict(attrs).get("type") in _BUTTONS:
            shown.add("value")
        self.parts += [v for k, v in attrs if k in shown and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def english_fragments(lang: str) -> dict[str, str]:
    """Each stretch of English in the page strings (%(name)s splits a string), by its msgid:
    only strings the language writes differently ("E-mail" may stay "E-mail")."""
    gettext = translations(lang).gettext
    fragments = {}
    for context, msgid in tipster_strings():
        if context is not None or gettext(msgid) == msgid:
            continue  # mail is not shown on a page
        for part in re.split(r"%\(\w+\)s", msgid):
            part = part.strip(" .,:;()?“”")
            if re.search(r"[A-Za-z]{2}", part):
                fragments[part] = msgid
    return fragments


def english_left(text: str, lang: str) -> list[str]:
    return sorted(
        f"{fragment!r} (from {msgid!r})"
        for fragment, msgid in english_fragments(lang).items()
        if re.search(rf"(?<![\w-]){re.escape(fragment)}(?![\w-])", text)
    )


@pytest.fixture(scope="module")
def three_languages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedProfile]:

    root = tmp_path_factory.mktemp("agency")
    folder = scaffold_agency(root, "lakeside")
    fill_placeholders(folder)
    edit_yaml(folder / "agency.yml", lambda data: data.update(languages=LANGUAGES))
    yield load_profile(folder)


@pytest.fixture(scope="module")
def built_site(three_languages: LoadedProfile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    assert build_site(three_languages, site, jobs=1) == LANGUAGES
    return site


def service_pages(client: TestClient, lang: str) -> dict[str, str]:
    """Every page the service shows a person who reports, in *lang*."""
    prefix = "" if lang == "en" else f"/{lang}"
    form = client.get(f"{prefix}/report").text
    errors = client.post(
        f"{prefix}/report",
        data={"token": token_of(form), "description": "", "email": "not an address"},
    )
    assert errors.status_code == 422
    unsigned = client.post(f"{prefix}/report", data={"description": "no token"})
    receipt = submit(client, f"{prefix}/report", area=AREA, danger_now="yes")
    assert receipt.status_code == 200, receipt.text
    code = code_of(receipt.text)
    wrong = client.post(f"{prefix}/status", data={"code": "7K3M-9Q2X-4H8D-2B6C-Z5TA"})
    assert wrong.status_code == 404
    found = client.post(f"{prefix}/status", data={"code": code})
    assert found.status_code == 200
    not_allowed = client.put(f"{prefix}/report")
    assert not_allowed.status_code == 405
    empty = client.post(
        f"{prefix}/status", data={"token": token_of(found.text), "message": "", "action": "send"}
    )
    return {
        "form": form,
        "form with errors": errors.text,
        "form from elsewhere": unsigned.text,
        "receipt": receipt.text,
        "status": client.get(f"{prefix}/status").text,
        "status, wrong code": wrong.text,
        "status and conversation": found.text,
        "conversation, empty message": empty.text,
        "error page": not_allowed.text,
    }


@pytest.mark.parametrize("lang", ["vi", "ar"])
def test_every_service_page_is_in_the_readers_language(
    three_languages: LoadedProfile,
    built_site: Path,
    make_settings: Callable[..., Settings],
    lang: str,
) -> None:
    settings = make_settings(profile=three_languages, site_dir=built_site)
    direction = "rtl" if lang == "ar" else "ltr"
    with start_client(settings) as client:
        pages = service_pages(client, lang)
    for name, html in pages.items():
        assert f'<html lang="{lang}" dir="{direction}">' in html, name
        left = english_left(page_text(html), lang)
        assert not left, f"{lang} {name}: English left: {left}"


def test_the_english_pages_would_be_caught(
    three_languages: LoadedProfile, built_site: Path, make_settings: Callable[..., Settings]
) -> None:
    """The comparison finds English where it is: every English page shows strings Vietnamese
    translates."""
    settings = make_settings(profile=three_languages, site_dir=built_site)
    with start_client(settings) as client:
        pages = service_pages(client, "en")
    for name, html in pages.items():
        assert english_left(page_text(html), "vi"), name


@pytest.mark.parametrize("lang", ["vi", "ar"])
def test_a_missing_page_is_the_languages_own(
    three_languages: LoadedProfile,
    built_site: Path,
    make_settings: Callable[..., Settings],
    lang: str,
) -> None:
    settings = make_settings(profile=three_languages, site_dir=built_site)
    with start_client(settings) as client:
        missing = client.get(f"/{lang}/report/nowhere")
        default = client.get("/nowhere")
    assert missing.status_code == 404 and default.status_code == 404
    assert f'<html lang="{lang}"' in missing.text
    assert '<html lang="en"' in default.text


@pytest.mark.parametrize("lang", ["vi", "ar"])
def test_the_site_is_built_in_the_language(built_site: Path, lang: str) -> None:
    home = (built_site / lang / "index.html").read_text(encoding="utf-8")
    direction = "rtl" if lang == "ar" else "ltr"
    assert f'<html lang="{lang}" class="no-js" dir="{direction}"' in home or (
        f'lang="{lang}"' in home and f'dir="{direction}"' in home
    )
    report_label = translations(lang).gettext("Report a concern")
    assert report_label != "Report a concern" and report_label in home

"""The head of every service page: a description in the page's language, and the site's icon."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from outreach.profile import localize

from .conftest import start_client, submit
from .test_security_headers import with_agency

# The first words of each page's description, in each language of the demo profile.
DESCRIPTIONS = {
    ("report", "en"): "Tell ",
    ("report", "es"): "Hable con el Equipo de Prevención",
    ("receipt", "en"): "Your report to the Harbor County",
    ("receipt", "es"): "Su reporte para el Equipo",
    ("status", "en"): "Check on a report ",
    ("status", "es"): "Consulte su reporte para el Equipo",
    ("error", "en"): "Tell ",
    ("error", "es"): "Hable con ",
}


def description(page: str) -> str:
    found = re.findall(r'<meta name="description" content="([^"]*)">', page)
    assert len(found) == 1, "one description per page"
    return html.unescape(found[0])


def icon(page: str) -> str:
    found = re.findall(r'<link rel="icon" href="([^"]+)">', page)
    assert len(found) == 1, "one icon per page"
    return found[0]


def page_of(client: TestClient, kind: str, lang: str) -> str:
    prefix = "" if lang == "en" else f"/{lang}"
    if kind == "receipt":
        return str(submit(client, f"{prefix}/report").text)
    if kind == "error":
        return client.post(f"{prefix}/report", data={"description": "no token"}).text
    return client.get(f"{prefix}/{kind}").text


@pytest.mark.parametrize(("kind", "lang"), list(DESCRIPTIONS))
def test_every_page_describes_itself_in_its_language(
    client: TestClient, keyed_demo: LoadedProfile, kind: str, lang: str
) -> None:
    text = description(page_of(client, kind, lang))
    agency = localize(keyed_demo.profile.agency.name, lang, keyed_demo.profile.default_language)
    assert text.startswith(DESCRIPTIONS[kind, lang]), text
    assert agency in text
    assert 50 <= len(text) <= 160, "what a search engine shows in full"


def test_every_page_has_the_agencys_logo_as_its_icon_and_the_service_serves_it(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    with start_client(make_settings()) as client:
        icons = {icon(page_of(client, kind, lang)) for kind, lang in DESCRIPTIONS}
        assert icons == {"/assets-form/logo.svg"}, "the demo agency's logo, as in the header"
        answer = client.get("/assets-form/logo.svg")
        wrong_kind = client.get("/assets-form/logo.png")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.content == (keyed_demo.folder / "logo.svg").read_bytes()
    assert wrong_kind.status_code == 404


def test_the_agencys_colour_stylesheet_follows_the_profile(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    light = with_agency(keyed_demo, primary_color="#FFC20E")
    with start_client(make_settings()) as client:
        demo = client.get("/assets-form/agency.css")
    with start_client(make_settings(profile=light)) as client:
        yellow = client.get("/assets-form/agency.css")
        page = client.get("/es/report").text
    assert demo.headers["content-type"].startswith("text/css")
    assert "--brand: #1f4e79;" in demo.text and "--on-brand: #ffffff;" in demo.text
    assert "--brand: #ffc20e;" in yellow.text and "--on-brand: #000000;" in yellow.text
    assert "--accent: #ffc20e;" not in yellow.text, "text on white takes a darker shade"
    assert '<link rel="stylesheet" href="/assets-form/agency.css">' in page


def test_an_agency_without_a_logo_gets_materials_icon(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile, demo_site: Path
) -> None:
    loaded = with_agency(keyed_demo, logo=None)
    with start_client(make_settings(profile=loaded)) as client:
        assert icon(client.get("/es/report").text) == "/assets/images/favicon.png"
    # Material puts its icon in every site it builds.
    assert (demo_site / "assets" / "images" / "favicon.png").is_file()


# The form's advice on the device and network to report from, in each language.
DEVICE_ADVICE = {
    "en": "If you can, use your own phone or computer and your own internet",
    "es": "Si puede, use su propio teléfono o computadora y su propio internet",
}


@pytest.mark.parametrize("lang", sorted(DEVICE_ADVICE))
def test_the_form_advises_a_personal_device_and_network(client: TestClient, lang: str) -> None:
    import textstat

    from tests.content import test_pages as content  # textstat without a download

    page = html.unescape(client.get(f"/{lang}/report").text)
    match = re.search(re.escape(DEVICE_ADVICE[lang]) + r"[^<]*", page)
    assert match, f"no advice on the device to use on the {lang} form"
    if lang == "en":
        textstat.set_lang("en")
        assert content.syllables is not None
        assert textstat.flesch_kincaid_grade(match.group(0)) <= 8.0

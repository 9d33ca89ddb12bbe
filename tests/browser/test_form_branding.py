"""The report form looks like the agency's site, as Chromium renders it without JavaScript:
the header bar in the agency's colour with its logo, named by the agency's name in the
reader's language, the site's fonts, buttons in the agency's colour; for the demo agency
and for another with a light colour (black text on it) and a logo of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from outreach.brand import text_on
from outreach.loader import load_profile
from outreach.profile import localize
from outreach.scaffold import scaffold_agency
from tests.browser.conftest import LIGHT_BRAND, Server, _serve
from tests.browser.page_weight import first_load
from tests.browser.support import SITE_LANGUAGES, lang_prefix
from tests.conftest import edit_yaml, fill_placeholders

pytestmark = pytest.mark.browser

OTHER_LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 32">'
    '<rect width="64" height="32" rx="6" fill="#000000"/>'
    '<circle cx="16" cy="16" r="9" fill="#ffc20e"/></svg>'
)

LOOK = """() => {
  const style = (selector) => getComputedStyle(document.querySelector(selector));
  const logo = document.querySelector('header a.agency img');
  return {
    header: style('body > header').backgroundColor,
    headerText: style('body > header a.agency').color,
    button: style('main form button[type=submit]').backgroundColor,
    buttonText: style('main form button[type=submit]').color,
    font: style('body').fontFamily,
    logo: logo && {src: new URL(logo.src).pathname, alt: logo.alt,
                   width: logo.naturalWidth, shown: logo.getBoundingClientRect().height},
  };
}"""


def rgb(hex_color: str) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.fixture(scope="module")
def other_agency(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A new agency with a light yellow colour and its own (wide) logo."""
    workdir = tmp_path_factory.mktemp("brand")
    folder = scaffold_agency(workdir, "brand-fixture")
    fill_placeholders(folder)
    (folder / "badge.svg").write_text(OTHER_LOGO, encoding="utf-8")

    def change(data: dict[str, Any]) -> None:
        data["languages"] = ["en", "es"]
        data["agency"]["primary_color"] = LIGHT_BRAND
        data["agency"]["logo"] = "badge.svg"
        data["agency"]["name"] = {"en": "Brand Fixture Team", "es": "Equipo Brand Fixture"}

    edit_yaml(folder / "agency.yml", change)
    yield from _serve(workdir, folder)


def form_look(browser: Browser, server: Server, lang: str) -> tuple[dict[str, Any], str, str]:
    """The form's look without JavaScript, and the site's header colour and font there."""
    context = browser.new_context(java_script_enabled=False)
    page: Page = context.new_page()
    page.goto(server.url(f"{lang_prefix(lang)}/report"))
    look: dict[str, Any] = page.evaluate(LOOK)
    page.goto(server.url(f"{lang_prefix(lang)}/"))
    site_header = page.locator(".md-header").evaluate("el => getComputedStyle(el).backgroundColor")
    site_font = page.locator("article").evaluate("el => getComputedStyle(el).fontFamily")
    logo = page.request.get(server.url(look["logo"]["src"])) if look["logo"] else None
    logo_body = logo.body() if logo is not None and logo.ok else b""
    context.close()
    look["logo_body"] = logo_body
    return look, site_header, site_font


def assert_branded(look: dict[str, Any], colour: str, name: str, logo: bytes) -> None:
    assert look["header"] == rgb(colour)
    assert look["headerText"] == rgb(text_on(colour))
    assert (look["button"], look["buttonText"]) == (rgb(colour), rgb(text_on(colour)))
    assert look["logo"] is not None, "the form shows no logo"
    assert look["logo"]["alt"] == name
    assert look["logo"]["width"] > 0 and look["logo"]["shown"] >= 24, look["logo"]
    assert look["logo_body"] == logo


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_demo_form_has_the_agencys_colour_logo_and_the_sites_look(
    browser: Browser, served: Server, lang: str
) -> None:
    loaded = load_profile(None)
    agency = loaded.profile.agency
    look, site_header, site_font = form_look(browser, served, lang)
    name = localize(agency.name, lang, loaded.profile.default_language)
    assert agency.logo is not None
    assert_branded(look, agency.primary_color, name, (loaded.folder / agency.logo).read_bytes())
    assert look["header"] == site_header
    assert look["font"].split(",")[0].strip() in site_font


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_another_agencys_form_takes_its_own_colour_and_logo(
    browser: Browser, other_agency: Server, lang: str
) -> None:
    look, site_header, _ = form_look(browser, other_agency, lang)
    name = {"en": "Brand Fixture Team", "es": "Equipo Brand Fixture"}[lang]
    assert_branded(look, LIGHT_BRAND, name, OTHER_LOGO.encode())
    assert look["header"] == site_header
    assert rgb(text_on(LIGHT_BRAND)) == "rgb(0, 0, 0)", "a light colour takes black text"


def test_the_branded_form_stays_light_and_a_missing_logo_is_not_found(
    browser: Browser, other_agency: Server
) -> None:
    load = first_load(browser, other_agency.base_url, "/es/report")
    assert load.within_bar(), load.files()
    assert any(url.endswith("/assets-form/logo.svg") for url in load.bodies)
    assert any(url.endswith("/assets-form/agency.css") for url in load.bodies)
    page = browser.new_page()
    answer = page.request.get(other_agency.url("/assets-form/logo.png"))
    page.close()
    assert answer.status == 404

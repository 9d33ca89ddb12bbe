"""The "Report a concern" button partners paste into their sites, in a real browser: on a
partner's page it passes axe with every rule (contrast included), is named by its text,
shows where the keyboard is, and makes no request of its own."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from outreach.loader import LoadedProfile
from outreach.site.materials import Renderer
from tests.browser.conftest import LIGHT_BRAND
from tests.browser.support import axe_violations
from tests.outreach.site.test_partner_texts import with_colour

pytestmark = pytest.mark.browser

NAMES = {
    "en": "Report a concern Harbor County Prevention Team",
    "es": "Reportar una preocupación Equipo de Prevención del Condado de Harbor",
}


def partner_page(snippet: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Our school</title>'
        "</head><body><main><h1>Our school</h1><p>Safety at our school.</p>"
        f"{snippet}</main></body></html>"
    )


@pytest.mark.parametrize("colour", ["#1f4e79", LIGHT_BRAND], ids=["dark", "light"])
@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_button_on_a_partners_page(
    page: Page, demo: LoadedProfile, lang: str, colour: str
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    snippet = Renderer(with_colour(demo, colour), lang).render("button.html")
    page.set_content(partner_page(snippet))

    link = page.get_by_role("link", name=NAMES[lang], exact=True)
    assert link.count() == 1
    assert axe_violations(page, every_rule=True) == []

    page.keyboard.press("Tab")
    assert link.evaluate("(a) => document.activeElement === a")
    outline = link.evaluate("(a) => getComputedStyle(a).outlineStyle")
    assert outline == "solid"
    assert requests == []


def test_axe_finds_a_button_that_does_not_read(page: Page, demo: LoadedProfile) -> None:
    snippet = Renderer(demo, "en").render("button.html").replace("color:#ffffff", "color:#3a6e9f")
    page.set_content(partner_page(snippet))
    assert any(line.startswith("color-contrast") for line in axe_violations(page, every_rule=True))

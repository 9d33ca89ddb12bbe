"""The "what happens next" diagram is drawn in the agency's colour, as Chromium renders it: the
brand colour itself when it reads on white, else the darker shade the site's links use."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from outreach.brand import readable_on_white
from tests.browser.conftest import LIGHT_BRAND, Server
from tests.browser.support import SITE_LANGUAGES, lang_prefix

pytestmark = pytest.mark.browser

DEMO_BRAND = "#1f4e79"

COLOURS = """() => {
  const svg = document.querySelector('.steps-diagram svg');
  const style = (selector) => getComputedStyle(svg.querySelector(selector));
  return {
    mark: style('circle').fill,
    arrow: style('polygon').fill,
    line: style('line').stroke,
    box: style('rect').stroke,
    number: style('text').fill,
  };
}"""


def rgb(hex_color: str) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def drawn_in(page: Page, colour: str) -> list[str]:
    colours: dict[str, str] = page.evaluate(COLOURS)
    problems = [f"{part} is {value}" for part, value in colours.items() if part != "number"]
    problems = [p for p in problems if not p.endswith(f" is {rgb(colour)}")]
    if colours["number"] != "rgb(255, 255, 255)":
        problems.append(f"numbers are {colours['number']}, not white")
    return problems


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_diagram_takes_the_demo_agencys_colour(page: Page, served: Server, lang: str) -> None:
    page.goto(served.url(f"{lang_prefix(lang)}/after-you-report/"))
    assert drawn_in(page, DEMO_BRAND) == []


def test_a_light_brand_draws_it_in_the_readable_shade(page: Page, rtl_served: Server) -> None:
    page.goto(rtl_served.url("/after-you-report/"))
    shade = readable_on_white(LIGHT_BRAND)
    assert shade != LIGHT_BRAND.lower()
    assert drawn_in(page, shade) == []

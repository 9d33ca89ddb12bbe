"""Reflow (WCAG 1.4.10): a 320 px wide phone and 200 % zoom scroll only up and down.

Every site page is checked at both widths in test_site_pages.py; here, the report service's
pages and the steps diagram, in windows made at those sizes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import Server
from tests.browser.support import (
    SITE_LANGUAGES,
    describe,
    diagram_problems,
    lang_prefix,
    overflow_problems,
)

pytestmark = pytest.mark.browser

# 320 CSS px: the width WCAG reflow is measured at. 200 % zoom of a 1280 px wide window
# is a 640 CSS px viewport drawn with two device pixels per CSS pixel.
VIEWPORTS = {
    "320px": {"viewport": {"width": 320, "height": 640}, "device_scale_factor": 1},
    "zoom200": {"viewport": {"width": 640, "height": 450}, "device_scale_factor": 2},
}


@pytest.fixture(scope="module")
def contexts(browser: Browser) -> Iterator[dict[str, BrowserContext]]:
    made = {name: browser.new_context(**options) for name, options in VIEWPORTS.items()}  # type: ignore[arg-type]
    yield made
    for context in made.values():
        context.close()


@pytest.fixture(params=list(VIEWPORTS))
def small(request: pytest.FixtureRequest, contexts: dict[str, BrowserContext]) -> Iterator[Page]:
    page = contexts[request.param].new_page()
    yield page
    page.close()


@pytest.mark.parametrize("path", ["/", "/report", "/es/report", "/status", "/es/status"])
def test_nothing_scrolls_sideways_or_is_cut_off(small: Page, served: Server, path: str) -> None:
    small.goto(served.url(path))
    problems = overflow_problems(small)
    assert problems == [], describe(problems)


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_steps_diagram_fits(small: Page, served: Server, lang: str) -> None:
    small.goto(served.url(f"{lang_prefix(lang)}/after-you-report/"))
    problems = diagram_problems(small)
    assert problems == [], describe(problems)


def test_the_checks_catch_a_wide_element_and_a_label_out_of_its_box(
    small: Page, served: Server
) -> None:
    small.goto(served.url("/after-you-report/"))
    small.evaluate(
        """() => {
             const wide = document.createElement('p');
             wide.style.width = '900px'; wide.textContent = 'too wide';
             document.querySelector('article').append(wide);
             document.querySelectorAll('.steps-diagram svg text')[1].setAttribute('x', '250');
           }"""
    )
    overflow = overflow_problems(small)
    assert any(line.startswith("p spans") for line in overflow), overflow
    diagram = diagram_problems(small)
    assert any("runs out of its box" in line for line in diagram), diagram

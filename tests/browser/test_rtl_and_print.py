"""A right-to-left language renders right to left (in an agency with a light brand colour);
the "How to report" page prints cleanly."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Server
from tests.browser.support import axe_violations, describe, overflow_problems

pytestmark = pytest.mark.browser

DIRECTION = "el => getComputedStyle(el).direction"


# Material sets dir on <body>; the report service on <html>.
@pytest.mark.parametrize(
    ("path", "main"),
    [("/ar/", "body article"), ("/ar/how-to-report/", "body article"), ("/ar/report", "html main")],
)
def test_arabic_renders_right_to_left(
    browser: Browser, rtl_served: Server, path: str, main: str
) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    answer = page.goto(rtl_served.url(path))
    assert answer is not None and answer.status == 200
    lang = page.locator("html").get_attribute("lang")
    direction = page.locator(main.split()[0]).evaluate(DIRECTION)
    content_direction = page.locator(main).first.evaluate(DIRECTION)
    overflow = overflow_problems(page)
    problems = axe_violations(page)
    context.close()
    assert (lang, direction, content_direction) == ("ar", "rtl", "rtl")
    assert overflow == [], describe(overflow)
    assert problems == [], describe(problems)


@pytest.mark.parametrize("path", ["/", "/warning-signs/", "/report"])
def test_the_default_language_of_the_same_agency_stays_left_to_right(
    page: Page, rtl_served: Server, path: str
) -> None:
    page.goto(rtl_served.url(path))
    assert page.locator("html").evaluate(DIRECTION) == "ltr"
    # The agency's brand colour is light: its generated colours still read at 4.5:1.
    problems = axe_violations(page)
    assert problems == [], describe(problems)


# Navigation and page chrome that paper has no use for.
CHROME = [".md-header", ".md-sidebar--primary", ".md-sidebar--secondary", ".md-footer"]
SHOWN = "el => el.checkVisibility()"


@pytest.mark.parametrize("path", ["/how-to-report/", "/es/how-to-report/"])
def test_how_to_report_prints_without_navigation(page: Page, served: Server, path: str) -> None:
    page.goto(served.url(path))
    on_screen = {selector: page.locator(selector).evaluate(SHOWN) for selector in CHROME}
    page.emulate_media(media="print")
    printed = {selector: page.locator(selector).evaluate(SHOWN) for selector in CHROME}
    article = page.locator("article")
    text_shown = article.evaluate(SHOWN) and len(article.inner_text()) > 500
    phone_shown = page.locator(".outreach-cta__danger").evaluate(SHOWN)
    width = page.evaluate("document.querySelector('.md-content').getBoundingClientRect().width")
    page_width = page.evaluate("document.documentElement.clientWidth")
    page.emulate_media(media="screen")
    assert all(on_screen.values()), on_screen
    assert not any(printed.values()), printed
    assert text_shown and phone_shown
    # Without the sidebars the text takes the page's width.
    assert width >= 0.9 * page_width

"""Moving around the site: the language switcher and the keyboard, with and without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import Server
from tests.browser.support import describe, focus_indicator, overflow_problems, tab_until

pytestmark = pytest.mark.browser

JS = {"js": True, "no-js": False}


@pytest.fixture(scope="module")
def contexts(browser: Browser) -> Iterator[dict[str, BrowserContext]]:
    # Phone-sized: the open language menu must fit on the screen too.
    made = {
        name: browser.new_context(
            java_script_enabled=enabled,
            reduced_motion="reduce",
            viewport={"width": 320, "height": 640},
        )
        for name, enabled in JS.items()
    }
    yield made
    for context in made.values():
        context.close()


@pytest.mark.parametrize("mode", JS)
@pytest.mark.parametrize(
    ("start", "language", "expected"),
    [
        ("/warning-signs/", "Español", "/es/warning-signs/"),
        ("/es/how-to-report/", "English", "/how-to-report/"),
        ("/", "Español", "/es/"),
        ("/es/partners/", "English", "/partners/"),
    ],
)
def test_language_switcher_lands_on_the_same_page(
    contexts: dict[str, BrowserContext],
    served: Server,
    mode: str,
    start: str,
    language: str,
    expected: str,
) -> None:
    page = contexts[mode].new_page()
    page.goto(served.url(start))
    page.locator(".md-select > button").click()
    page.locator(".md-select__link", has_text=language).wait_for()
    menu = overflow_problems(page)
    with page.expect_navigation():
        page.locator(".md-select__link", has_text=language).click()
    landed, lang = page.url, page.locator("html").get_attribute("lang")
    page.close()
    assert menu == [], describe(menu)
    assert landed == served.url(expected)
    assert lang == ("es" if expected.startswith("/es/") else "en")


WINDOWS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 360, "height": 740}},
    "zoom200": {"viewport": {"width": 640, "height": 450}, "device_scale_factor": 2},
}

REPORT_LINK = "el.matches('a.outreach-cta__report')"


@pytest.mark.parametrize("mode", JS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("path", ["/warning-signs/", "/es/"])
def test_tab_reaches_report_a_concern_with_a_visible_focus_indicator(
    browser: Browser, scratch: Page, served: Server, mode: str, window: str, path: str
) -> None:
    context = browser.new_context(
        java_script_enabled=JS[mode], reduced_motion="reduce", **WINDOWS[window]
    )
    page = context.new_page()
    page.goto(served.url(path))
    problems = tab_until(page, REPORT_LINK)
    indicator = focus_indicator(page, page.locator("a.outreach-cta__report"), scratch)
    context.close()
    assert problems == [], describe(problems)
    assert indicator.visible, indicator


def test_the_focus_check_catches_a_hidden_focus_indicator(
    browser: Browser, scratch: Page, served: Server
) -> None:
    # The service's Content-Security-Policy would refuse the test's own style sheet.
    context = browser.new_context(reduced_motion="reduce", bypass_csp=True)
    page = context.new_page()
    page.goto(served.url("/"))
    page.add_style_tag(
        content=".outreach-cta__report:focus-visible { outline: none !important;"
        " box-shadow: none !important; background-color: var(--md-primary-fg-color)"
        " !important; }"
    )
    page.locator(".md-header").evaluate("el => el.style.display = 'none'")
    assert tab_until(page, REPORT_LINK) == []
    indicator = focus_indicator(page, page.locator("a.outreach-cta__report"), scratch)
    # A link moved off screen is a focus stop nobody sees.
    page.locator("a.outreach-cta__call").first.evaluate(
        "el => { el.style.position = 'fixed'; el.style.left = '-999px'; }"
    )
    page.evaluate("document.activeElement.blur()")
    page.locator(".md-skip").focus()
    hidden_stop = tab_until(page, REPORT_LINK)
    context.close()
    assert not indicator.visible, indicator
    assert any("focus is not visible on screen: a.outreach-cta__call" in p for p in hidden_stop)

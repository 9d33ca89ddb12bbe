"""axe-core on the phone layout, open panels and pages without JavaScript; and the check itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import axe_violations, describe, overflow_problems

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


@pytest.mark.parametrize("path", ["/", "/es/how-to-report/"])
def test_phone_layout_and_open_panels_have_no_violations(
    browser: Browser, served: Server, path: str
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(served.url(path))
    problems = axe_violations(page)
    # The navigation drawer, open.
    page.locator("label.md-header__button[for='__drawer']").click()
    page.locator(".md-sidebar--primary .md-nav__link").first.wait_for()
    problems += axe_violations(page)
    context.close()
    assert problems == [], describe(problems)


@pytest.mark.parametrize("path", ["/", "/how-to-report/", "/es/", "/es/warning-signs/"])
def test_page_without_javascript_has_no_violations_and_reflows(
    browser: Browser, served: Server, path: str
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(served.url(path))
    problems = axe_violations(page, javascript=False)
    for width, height in [(640, 450), (320, 640)]:
        page.set_viewport_size({"width": width, "height": height})
        problems += [f"at {width}px: {line}" for line in overflow_problems(page)]
    context.close()
    assert problems == [], describe(problems)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_axe_finds_an_image_without_a_text_alternative(
    browser: Browser, served: Server, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.goto(served.url("/"))
    page.evaluate(
        """() => { const img = document.createElement('img'); img.src = 'assets/logo.svg';
                   document.querySelector('article').append(img); }"""
    )
    problems = axe_violations(page, javascript)
    context.close()
    assert any(line.startswith("image-alt (critical)") for line in problems), problems

"""axe-core on the phone layout, open panels and pages without JavaScript; every axe rule on every
site page and open panel; and the check itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import axe_violations, built_pages, describe, overflow_problems

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


# -- every rule axe-core has (best practices and experimental ones too) ------------------


def test_every_site_page_passes_every_axe_rule(browser: Browser, served: Server) -> None:
    """Each page as it loads (Material's script not fetched yet), and the site's 404 page."""
    context = browser.new_context()
    page = context.new_page()
    found = {}
    for path in [*sorted(built_pages(served.site_dir)), "/no-such-page/", "/es/no-such-page/"]:
        page.goto(served.url(path), wait_until="networkidle")
        if problems := axe_violations(page, every_rule=True):
            found[path] = problems
    context.close()
    assert found == {}, "\n".join(f"{path}:\n{describe(lines)}" for path, lines in found.items())


@pytest.mark.parametrize("path", ["/", "/es/warning-signs/"])
def test_open_panels_pass_every_axe_rule_once_materials_script_runs(
    browser: Browser, served: Server, path: str
) -> None:
    # Reduced motion: the panels and tooltips are checked as they end up, not half-way
    # through a fade, when axe would read a blend of their colours.
    context = browser.new_context(viewport=PHONE, reduced_motion="reduce")
    page = context.new_page()
    page.goto(served.url(path), wait_until="networkidle")
    found = {}
    # The drawer: a tap loads Material's script, which then runs the drawer.
    page.locator("label.md-header__button[for='__drawer']").click()
    page.locator(".md-sidebar--primary .md-nav__link").first.wait_for()
    page.wait_for_function("() => document.documentElement.classList.contains('js')")
    found["drawer"] = axe_violations(page, every_rule=True)
    page.keyboard.press("Escape")
    page.goto(served.url(path), wait_until="networkidle")
    page.locator("label.md-header__button[for='__search']").click()
    page.locator(".md-search__input").fill("report")
    page.locator(".md-search-result__item").first.wait_for()
    found["search with results"] = axe_violations(page, every_rule=True)
    context.close()
    found = {state: lines for state, lines in found.items() if lines}
    assert found == {}, "\n".join(f"{state}:\n{describe(lines)}" for state, lines in found.items())

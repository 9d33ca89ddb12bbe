"""Every page of the site, in every language, in a real browser: nothing loaded from another
origin, no cookie, and no WCAG 2.2 A/AA violation that axe-core can find."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import (
    SITE_PAGES,
    Traffic,
    axe_violations,
    built_pages,
    describe,
    privacy_problems,
)

pytestmark = pytest.mark.browser


def test_the_suite_covers_every_built_page(served: Server) -> None:
    assert built_pages(served.site_dir) == set(SITE_PAGES)


@pytest.mark.parametrize("path", SITE_PAGES)
def test_page_is_private_and_accessible(browser: Browser, served: Server, path: str) -> None:
    context = browser.new_context()
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    answer = page.goto(served.url(path), wait_until="networkidle")
    assert answer is not None and answer.status == 200
    # The page, its styles and scripts, and what the scripts fetch (search, sitemaps).
    assert len(traffic.requests) >= 5, traffic.requests
    problems = privacy_problems(traffic, context)
    problems += axe_violations(page)
    context.close()
    assert problems == [], describe(problems)

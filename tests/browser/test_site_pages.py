"""Every page of the site, in every language, in a real browser: nothing loaded from another
origin, no cookie, no WCAG 2.2 A/AA violation that axe-core can find, and no sideways
scrolling at 200 % zoom or on a 320 px wide phone (WCAG 1.4.10 Reflow)."""

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
    overflow_problems,
    privacy_problems,
)

pytestmark = pytest.mark.browser

REFLOW = [(640, 450), (320, 640)]


def test_the_suite_covers_every_built_page(served: Server) -> None:
    assert built_pages(served.site_dir) == set(SITE_PAGES)


@pytest.mark.parametrize("path", SITE_PAGES)
def test_page_is_private_accessible_and_reflows(
    browser: Browser, served: Server, path: str
) -> None:
    context = browser.new_context()
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    answer = page.goto(served.url(path), wait_until="networkidle")
    assert answer is not None and answer.status == 200
    # The page, its styles and scripts, and what the scripts fetch (search, sitemaps).
    assert len(traffic.requests) >= 5, traffic.requests
    problems = privacy_problems(traffic, context)
    problems += axe_violations(page)
    # Layout depends on the viewport's CSS width alone: 200 % zoom of a 1280 px window is a
    # 640 px viewport (test_site_layout.py also draws it with two device pixels per px).
    for width, height in REFLOW:
        page.set_viewport_size({"width": width, "height": height})
        problems += [f"at {width}px: {line}" for line in overflow_problems(page)]
    context.close()
    assert problems == [], describe(problems)

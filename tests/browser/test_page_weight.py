"""Every page's first load stays under 50 KiB compressed (issue 21): each page of the built
site in every language, the report form, its receipt and the status page, measured by the
same code as bench/page_weight.py (sizes of what Chromium loaded, not times)."""

from __future__ import annotations

import random

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.page_weight import BAR_KIB, SERVICE_PAGES, Load, first_load
from tests.browser.support import built_pages

pytestmark = pytest.mark.browser


def over_the_bar(loads: list[Load]) -> list[str]:
    return [
        f"{load.page}: {load.gzipped() / 1024:.1f} KiB > {BAR_KIB:.0f} KiB ({load.files()})"
        for load in loads
        if not load.within_bar()
    ]


def test_every_site_page_of_the_demo_loads_under_the_bar(browser: Browser, served: Server) -> None:
    pages = sorted(built_pages(served.site_dir))
    assert len(pages) >= 26, pages
    loads = [first_load(browser, served.base_url, path) for path in pages]
    assert all(load.gzipped() > 0 for load in loads)
    assert over_the_bar(loads) == []


def test_the_form_its_receipt_and_the_status_page_load_under_the_bar(
    browser: Browser, served: Server
) -> None:
    loads = [first_load(browser, served.base_url, path) for path in SERVICE_PAGES]
    loads += [first_load(browser, served.base_url, "/es/report", submit=True)]
    loads += [first_load(browser, served.base_url, "/report", submit=True)]
    assert [load.page for load in loads][-2:] == ["/es/receipt", "/receipt"]
    assert over_the_bar(loads) == []


@pytest.mark.parametrize("path", ["/ar/", "/ar/how-to-report/", "/ar/report"])
def test_another_agency_in_arabic_loads_under_the_bar(
    browser: Browser, rtl_served: Server, path: str
) -> None:
    assert over_the_bar([first_load(browser, rtl_served.base_url, path)]) == []


def test_the_measure_counts_every_file_of_the_load() -> None:
    """A page whose files add up past the bar is over it, whatever each file weighs alone."""
    # 10 KiB each that gzip cannot shrink: six of them weigh more than the bar.
    bodies = {
        f"http://127.0.0.1/assets/{n}.css": random.Random(n).randbytes(10 * 1024) for n in range(6)
    }
    load = Load("/", bodies, {}, set())
    assert load.gzipped() > BAR_KIB * 1024
    assert over_the_bar([load]) != []
    assert over_the_bar([Load("/", dict(list(bodies.items())[:2]), {}, set())]) == []

"""The report service's pages as audit tools (Lighthouse) read them in Chromium: the page's
icon loads, so the console shows no failed request, and the site's robots.txt can be read
as the page, under the page's own CSP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.browser.conftest import Server
from tests.browser.support import SITE_LANGUAGES, lang_prefix

pytestmark = pytest.mark.browser

FORM = {"#f-description": "A classmate said he will bring a gun on Friday."}
RADIOS = ["#f-area-1", "#f-setting-1", "#f-concern-1", "#f-danger_now-2"]


def read_as_the_page(page: Page, url: str) -> dict[str, Any]:
    """Fetch *url* the way Lighthouse fetches robots.txt: Chromium's DevTools loader, in
    the page's frame. Chromium applies the page's CSP to it (connect-src)."""
    cdp = page.context.new_cdp_session(page)
    frame = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
    cdp.send("Network.enable")
    try:
        answer = cdp.send(
            "Network.loadNetworkResource",
            {
                "frameId": frame,
                "url": url,
                "options": {"disableCache": True, "includeCredentials": False},
            },
        )
        resource: dict[str, Any] = answer["resource"]
        return resource
    finally:
        cdp.detach()


def send_report(page: Page) -> None:
    for selector, text in FORM.items():
        page.locator(selector).fill(text)
    for radio in RADIOS:
        page.locator(radio).check()
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_form_receipt_and_status_log_no_error_and_let_robots_txt_be_read(
    browser: Browser, served: Server, lang: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", note)
    icons: list[int] = []
    page.on("response", lambda r: icons.append(r.status) if "/assets/logo." in r.url else None)
    prefix = lang_prefix(lang)
    robots: dict[str, Any] = {}
    page.goto(served.url(f"{prefix}/report"), wait_until="networkidle")
    robots["form"] = read_as_the_page(page, served.url("/robots.txt"))
    send_report(page)
    page.wait_for_load_state("networkidle")
    assert page.locator("#receipt-code").count() == 1
    robots["receipt"] = read_as_the_page(page, served.url("/robots.txt"))
    page.goto(served.url(f"{prefix}/status"), wait_until="networkidle")
    robots["status"] = read_as_the_page(page, served.url("/robots.txt"))
    context.close()
    assert errors == []
    assert icons and set(icons) == {200}, icons
    # The demo site has no robots.txt: a 404 is an answer (crawl everything), not a block.
    for name, resource in robots.items():
        assert resource.get("httpStatusCode") == 404, (name, resource)

"""Zero third-party requests and zero cookies: what scripts fetch later, and the check itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import (
    SITE_LANGUAGES,
    Traffic,
    describe,
    lang_prefix,
    privacy_problems,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_searching_loads_only_from_its_own_origin(
    browser: Browser, served: Server, lang: str
) -> None:
    context = browser.new_context()
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    page.goto(served.url(f"{lang_prefix(lang)}/"), wait_until="networkidle")
    page.locator(".md-search__input").press_sequentially("report")
    page.locator(".md-search-result__item").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert any(url.endswith("/search/search_index.json") for url in traffic.requests)
    problems = privacy_problems(traffic, context)
    context.close()
    assert problems == [], describe(problems)


def test_a_request_to_another_origin_and_a_cookie_are_caught(
    browser: Browser, served: Server
) -> None:
    context = browser.new_context()
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    page.goto(served.url("/"), wait_until="networkidle")
    # localhost is another origin than 127.0.0.1, though the same server answers it.
    other = served.base_url.replace("127.0.0.1", "localhost")
    page.evaluate(
        """(src) => new Promise((done) => {
             const img = new Image(); img.onload = img.onerror = done; img.src = src;
             document.body.append(img); document.cookie = 'seen=1; path=/'; })""",
        f"{other}/assets/logo.svg",
    )
    problems = privacy_problems(traffic, context)
    context.close()
    assert f"third-party request: {other}/assets/logo.svg" in problems
    assert any(p.startswith("cookie in the browser: seen") for p in problems)

"""Search loads when a reader opens it: a page's first load fetches neither the search index
nor the search engine nor its language support (lunr-languages), and opening search then
finds pages, with the Spanish language support loaded on the Spanish site."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import SITE_LANGUAGES, lang_prefix

pytestmark = pytest.mark.browser

# What Material used to fetch as soon as any page was shown.
SEARCH_FILES = (
    "/search/search_index.json",
    "/assets/javascripts/lunr/",
    ".engine.min.js",
)
QUERY = {"en": "threats", "es": "amenazas"}


def search_files(requests: list[str]) -> list[str]:
    return [url for url in requests if any(part in url for part in SEARCH_FILES)]


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
@pytest.mark.parametrize("page_name", ["", "warning-signs/"])
def test_a_page_loads_no_search_files_until_search_opens(
    browser: Browser, served: Server, lang: str, page_name: str
) -> None:
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(served.url(f"{lang_prefix(lang)}/{page_name}"), wait_until="networkidle")
    page.wait_for_timeout(500)
    at_load = search_files(requests)
    context.close()
    assert at_load == []


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_search_finds_pages_with_the_language_support_of_the_site(
    browser: Browser, served: Server, lang: str
) -> None:
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(served.url(f"{lang_prefix(lang)}/"), wait_until="networkidle")
    page.locator(".md-search__input").press_sequentially(QUERY[lang])
    page.locator(".md-search-result__item").first.wait_for()
    found = page.locator(".md-search-result__item").count()
    support = [url for url in requests if "/javascripts/lunr/" in url]
    context.close()
    assert found >= 1
    if lang == "es":
        assert any(url.endswith("/lunr.es.min.js") for url in support), support
    else:
        assert support == [], "lunr itself knows English"


@pytest.mark.parametrize("key", ["/", "s"])
def test_a_search_key_opens_search_though_materials_script_was_not_loaded_yet(
    browser: Browser, served: Server, key: str
) -> None:
    """The key fetches Material's script (not part of the page's load) and is passed on."""
    context = browser.new_context()
    scripts: list[str] = []
    context.on("request", lambda r: scripts.append(r.url) if "/bundle." in r.url else None)
    page = context.new_page()
    page.goto(served.url("/warning-signs/"), wait_until="networkidle")
    before = list(scripts)
    page.keyboard.press(key)
    page.wait_for_function("() => document.activeElement?.matches('.md-search__input')")
    page.keyboard.type(QUERY["en"])
    page.locator(".md-search-result__item").first.wait_for()
    context.close()
    assert before == [] and len(scripts) == 1, scripts

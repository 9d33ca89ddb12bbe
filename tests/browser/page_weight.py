"""What one page's first load weighs in Chromium: shared by bench/page_weight.py and the
test that holds every page under the bar (tests/browser/test_page_weight.py).

A first load is the page and every same-origin response Chromium gets while loading it
with an empty cache, up to network idle; nothing the reader does afterwards (opening
search, a first tap that fetches Material's script) is part of it. Sizes are of the bytes
Chromium received, gzip-compressed at level 6: what a server's gzip would send.
"""

from __future__ import annotations

import gzip
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page

from tests.browser.support import origin

BAR_KIB = 50.0
"""Every page's first load, gzip-compressed, search index excluded (issue 21)."""
SEARCH_INDEX = "/search/search_index.json"
FORM = {"#f-description": "A classmate said he will bring a gun on Friday."}
RADIOS = ["#f-area-1", "#f-setting-1", "#f-concern-1", "#f-danger_now-2"]


def served_size(url: str) -> tuple[int, str]:
    """What the service sends for *url* to a browser that accepts gzip, and its encoding."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, br"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return len(answer.read()), answer.headers.get("Content-Encoding", "identity")


def _index(url: str) -> bool:
    return urlsplit(url).path.endswith(SEARCH_INDEX)


def _search(url: str) -> bool:
    """The search index and the scripts that load and read it (worker, lunr languages)."""
    path = urlsplit(url).path
    return _index(url) or "/javascripts/workers/search." in path or "/javascripts/lunr/" in path


@dataclass
class Load:
    page: str
    bodies: dict[str, bytes]
    served: dict[str, int]
    encodings: set[str]

    def raw(self, with_index: bool = False) -> int:
        return sum(len(b) for u, b in self.bodies.items() if with_index or not _index(u))

    def gzipped(self, with_index: bool = False) -> int:
        return sum(
            len(gzip.compress(b, 6)) for u, b in self.bodies.items() if with_index or not _index(u)
        )

    def gzipped_without_search(self) -> int:
        return sum(len(gzip.compress(b, 6)) for u, b in self.bodies.items() if not _search(u))

    def as_served(self) -> int:
        return sum(size for u, size in self.served.items() if not _index(u))

    def index_gzip(self) -> int:
        return sum(len(gzip.compress(b, 6)) for u, b in self.bodies.items() if _index(u))

    def within_bar(self) -> bool:
        return self.gzipped() <= BAR_KIB * 1024

    def files(self) -> str:
        """Each file of the load with its compressed size, largest first, for a message."""
        sizes = sorted(
            ((len(gzip.compress(b, 6)), urlsplit(u).path) for u, b in self.bodies.items()),
            reverse=True,
        )
        return ", ".join(f"{path} {size / 1024:.1f} KiB" for size, path in sizes)


def fill_report(page: Page) -> None:
    for selector, text in FORM.items():
        page.locator(selector).fill(text)
    for radio in RADIOS:
        page.locator(radio).check()


def first_load(browser: Browser, base: str, path: str, submit: bool = False) -> Load:
    """Every same-origin response of one page's load with an empty cache.

    *submit*: the page is the form at *path*, filled in and sent; the load measured is the
    receipt's (the POST's answer and what it loads).
    """
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if submit:
        page.goto(base + path)
        fill_report(page)
    responses = []
    context.on("response", lambda response: responses.append(response))
    if submit:
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        page.wait_for_load_state("networkidle")
        name = path.replace("/report", "/receipt")
    else:
        page.goto(base + path, wait_until="networkidle")
        name = path
    bodies: dict[str, bytes] = {}
    served: dict[str, int] = {}
    encodings: set[str] = set()
    for response in responses:
        if origin(response.url) != base or response.status >= 300:
            continue
        bodies[response.url] = response.body()
        if response.request.method == "GET":
            served[response.url], encoding = served_size(response.url)
        else:  # the receipt: what came back from the POST
            served[response.url] = len(bodies[response.url])
            encoding = response.headers.get("content-encoding", "identity")
        encodings.add(encoding)
    context.close()
    return Load(name, bodies, served, encodings)


SERVICE_PAGES = ["/report", "/es/report", "/status", "/es/status"]
"""The report service's pages measured besides the site's (each form also sent once)."""

"""The Materials page as a partner uses it: axe finds nothing, with and without JavaScript,
at 320 px too (the code to copy wraps); its PDFs and texts are served from the site itself;
nothing is loaded from anywhere else."""

from __future__ import annotations

import re
import urllib.request

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server
from tests.browser.support import (
    Traffic,
    axe_violations,
    describe,
    overflow_problems,
    privacy_problems,
)

pytestmark = pytest.mark.browser

PATHS = ["/materials/", "/es/materials/"]
TYPES = {".pdf": "application/pdf", ".txt": "text/plain"}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("path", PATHS)
def test_axe_passes_and_the_page_reflows(
    browser: Browser, served: Server, path: str, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript)
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    page.goto(served.url(path), wait_until="networkidle" if javascript else "load")
    problems = axe_violations(page, javascript)
    for width, height in [(640, 450), (320, 640)]:
        page.set_viewport_size({"width": width, "height": height})
        problems += [f"at {width}px: {line}" for line in overflow_problems(page)]
        problems += [f"at {width}px: {line}" for line in axe_violations(page, javascript)]
    problems += privacy_problems(traffic, context)
    context.close()
    assert problems == [], describe(problems)


@pytest.mark.parametrize("path", PATHS)
def test_every_file_it_lists_is_served_by_the_site(served: Server, path: str) -> None:
    with urllib.request.urlopen(served.url(path)) as response:
        page = response.read().decode("utf-8")
    links = sorted(set(re.findall(r'href="(/materials/[a-z-]+/[\w-]+\.(?:pdf|txt))"', page)))
    assert len(links) == 2 * 10
    for link in links:
        with urllib.request.urlopen(served.url(link)) as response:
            assert response.headers.get_content_type() == TYPES[link[-4:]], link
            body = response.read()
        if link.endswith(".pdf"):
            assert body.startswith(b"%PDF-"), link
        else:
            assert "https://" in body.decode("utf-8"), link

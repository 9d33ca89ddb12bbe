"""Material's script is not part of a page's load: each page has the loader that fetches it
at the reader's first tap or key, and no <script src> of it; the palette stylesheet is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from outreach.site.theme_script import theme_script

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"")


def test_the_theme_script_is_materials_bundle() -> None:
    path = theme_script()
    assert re.fullmatch(r"assets/javascripts/bundle\.[0-9a-f]+\.min\.js", path), path


PAGES = ["index.html", "warning-signs/index.html", "es/privacy/index.html"]


@pytest.mark.parametrize("page", PAGES)
def test_a_page_loads_no_script_file_and_fetches_materials_on_demand(
    demo_site: Path, page: str
) -> None:
    html = (demo_site / page).read_text(encoding="utf-8")
    assert SCRIPT_SRC.findall(html) == []
    name = theme_script().rsplit("/", 1)[1]
    loader = [line for line in html.splitlines() if name in line]
    assert len(loader) == 1, loader
    assert '"pointerdown","keydown","focusin"' in loader[0]
    assert "stylesheets/palette." not in html
    assert (demo_site / theme_script()).is_file()

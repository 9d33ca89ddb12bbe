"""Numbers and receipt codes read the same in every language, and fit a phone's screen.

Against the second fixture profile (tests/fixtures/region: en, vi and ar, right to left):
a phone number in Arabic text is drawn in the same left-to-right order as in English; every
number to call is a link a phone dials; the receipt code is shown whole at 320 px and at
200% zoom (320 px at 200% lays out at 160 CSS px), wrapped by its groups, one value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Server, _serve
from tests.browser.support import axe_violations, describe
from tests.conftest import REPO

pytestmark = pytest.mark.browser

REGION = REPO / "tests" / "fixtures" / "region"
CRISIS_PHONE = "(555) 555-0160"
"""In a partner's description in the directory, amid Arabic text on the Arabic page."""


@pytest.fixture(scope="module")
def region(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    os.environ.setdefault("RIVERBEND_UNIVERSITY_WEBHOOK_SECRET", "whsec_" + "A" * 44)
    yield from _serve(tmp_path_factory.mktemp("region"), REGION)


# The digits of the first link showing *text*, in the order they are drawn: line by line,
# left to right on each.
_DRAWN_ORDER = """
([selector, text]) => {
  const link = [...document.querySelectorAll(selector)].find(a => a.textContent === text);
  if (!link) return null;
  const node = link.firstChild;
  const digits = [];
  for (let i = 0; i < node.length; i++) {
    if (!/[0-9]/.test(node.data[i])) continue;
    const range = document.createRange();
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    const box = range.getBoundingClientRect();
    digits.push([Math.round(box.top), box.left, node.data[i]]);
  }
  // Line by line, then left to right.
  return digits.sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(d => d[2]).join("");
}
"""


def drawn_digits(page: Page, selector: str, text: str) -> str | None:
    return page.evaluate(_DRAWN_ORDER, [selector, text])  # type: ignore[no-any-return]


def test_a_phone_number_reads_the_same_in_arabic_as_in_english(
    browser: Browser, region: Server
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    orders = {}
    for lang, prefix in (("en", ""), ("ar", "/ar")):
        page.goto(region.url(f"{prefix}/partners/"))
        assert page.locator("body").get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
        orders[lang] = drawn_digits(page, "a.outreach-tel", CRISIS_PHONE)
    # The check can fail: without its direction, the same link reads otherwise in Arabic.
    page.evaluate(
        "() => document.querySelectorAll('a.outreach-tel').forEach(a => a.removeAttribute('dir'))"
    )
    unmarked = drawn_digits(page, "a.outreach-tel", CRISIS_PHONE)
    context.close()
    assert orders["en"] == "5555550160"
    assert orders["ar"] == orders["en"]
    assert unmarked != orders["en"], unmarked


def test_every_number_to_call_is_a_link_on_the_site_and_the_form(
    browser: Browser, region: Server
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.goto(region.url("/ar/get-help/"))
    hrefs = {a.get_attribute("href") for a in page.locator("a.outreach-tel").all()}
    # The emergency number, the crisis lines with a number, and the text line as sms:.
    assert {"tel:911", "tel:988", "tel:5555550177", "sms:5550199"} <= hrefs, hrefs
    bar = page.locator(".outreach-cta a.outreach-cta__call")
    assert {a.get_attribute("href") for a in bar.all()} == {"tel:911", "tel:988"}
    page.goto(region.url("/ar/report"))
    emergency = page.locator("aside.emergency a")
    assert {a.get_attribute("href") for a in emergency.all()} == {"tel:911", "tel:988"}
    assert page.locator("aside.emergency a[href='tel:911']").get_attribute("dir") == "ltr"
    context.close()


def _send_report(page: Page, region: Server, lang: str, danger_now: bool = False) -> None:
    prefix = "" if lang == "en" else f"/{lang}"
    page.goto(region.url(f"{prefix}/report"))
    page.locator("#f-description").fill("Someone wrote that they will hurt people on Friday.")
    for radio in ("f-area-1", "f-setting-1", "f-concern-1"):
        page.locator(f"#{radio}").check()
    page.locator("#f-danger_now-1" if danger_now else "#f-danger_now-2").check()
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


# The code's box against its text: the paragraph it sits in overflows nothing, every group
# is inside the screen and the paragraph, and the text is the one value.
_CODE_FITS = """
() => {
  const code = document.querySelector("#receipt-code");
  const line = code.parentElement;
  const box = line.getBoundingClientRect();
  const groups = [...code.querySelectorAll(".code-group")].map(g => g.getBoundingClientRect());
  return {
    value: code.getAttribute("value"),
    text: code.textContent,
    lineScroll: line.scrollWidth,
    lineClient: line.clientWidth,
    viewport: window.innerWidth,
    outside: groups.filter(g => g.left < box.left - 0.5 || g.right > box.right + 0.5
                                 || g.left < 0 || g.right > window.innerWidth).length,
    lines: new Set(groups.map(g => Math.round(g.top))).size,
    groups: groups.length,
  };
}
"""


@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("width", [320, 160], ids=["320px", "320px-at-200%"])
def test_the_receipt_code_is_shown_whole_wrapped_by_its_groups(
    browser: Browser, region: Server, lang: str, width: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 700}, device_scale_factor=320 // width
    )
    page = context.new_page()
    _send_report(page, region, lang)
    fits = page.evaluate(_CODE_FITS)
    problems = axe_violations(page, every_rule=True) if width == 320 else []
    context.close()
    assert problems == [], describe(problems)
    assert fits["text"] == fits["value"] and fits["groups"] == 5, fits
    assert fits["lineScroll"] <= fits["lineClient"], fits  # not narrower than its text
    assert fits["outside"] == 0, fits
    if width == 160:
        assert fits["lines"] > 1, fits  # wrapped, by its groups


def test_call_now_on_the_receipt_is_a_tap_to_call_link(browser: Browser, region: Server) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 700})
    page = context.new_page()
    _send_report(page, region, "ar", danger_now=True)
    call = page.locator(".call-now .call-now-title a")
    assert call.get_attribute("href") == "tel:911"
    assert "911" in call.inner_text()
    context.close()

"""Every state of the report service's public pages passes every rule axe-core has (best
practices and experimental rules included), without JavaScript, in each language: the form
(empty, with errors, with a notice, refused at the limit), the receipt, the page for a form
sent twice (409), the status look-up (empty, a wrong code, a right code, refused at the
limit) and the error pages (404, 413, 429, 503). The conversation states are in
test_service_pages.py; the staff pages in test_staff_pages.py."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, Route

from tests.browser.conftest import Server, _serve
from tests.browser.support import (
    RECEIPT_CODE,
    SITE_LANGUAGES,
    axe_violations,
    describe,
    lang_prefix,
)

pytestmark = pytest.mark.browser

LOCALES = {"en": "en-US", "es": "es-ES"}
WHAT = {"en": "He said he will hurt someone at the game.", "es": "Dijo que va a herir a alguien."}
CHOICES = ["#f-area-1", "#f-setting-1", "#f-concern-1"]
WRONG_CODE = "0000-0000-0000-0000-0000"
DANGER = {True: "#f-danger_now-1", False: "#f-danger_now-2"}
# A client may hold this many connections; the test holds them all to get the busy page.
CONNECTIONS = 8
LIMITS = {
    # Ten reports at once from one address, then one an hour: the eleventh is refused. The
    # other states take eight; the last test sends reports until one is refused.
    "OUTREACH_REPORT_CLIENT_BURST": "10",
    "OUTREACH_REPORT_CLIENT_PER_HOUR": "1",
    "OUTREACH_STATUS_CLIENT_LIMIT": "6",  # the other states take four
    "OUTREACH_STATUS_MIN_SECONDS": "0",
    "OUTREACH_CONNECTIONS_PER_CLIENT": str(CONNECTIONS),
}


@pytest.fixture(scope="module")
def limited(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo with low limits, so that a test reaches them in a few requests."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMITS.items():
            env.setenv(name, value)
        yield from _serve(tmp_path_factory.mktemp("limits"))


class States:
    """Each state's axe findings, gathered on the way, asserted at the end."""

    def __init__(self, page: Page, lang: str) -> None:
        self.page, self.lang, self.found = page, lang, {}

    def check(self, state: str, answer: Response | None, status: int) -> None:
        assert answer is not None and answer.status == status, (state, answer and answer.status)
        assert self.page.locator("html").get_attribute("lang") == self.lang, state
        problems = axe_violations(self.page, javascript=False, every_rule=True)
        if problems:
            self.found[f"{state} ({self.lang})"] = problems

    def assert_none(self) -> None:
        assert self.found == {}, "\n".join(f"{s}:\n{describe(p)}" for s, p in self.found.items())


def context_for(browser: Browser, lang: str) -> BrowserContext:
    context = browser.new_context(java_script_enabled=False, locale=LOCALES[lang])
    context.set_default_timeout(90_000)
    context.set_default_navigation_timeout(90_000)
    return context


def send(page: Page) -> Response | None:
    with page.expect_navigation() as navigation:
        page.locator("main form button[type=submit]").click()
    return navigation.value


def fill(page: Page, lang: str, danger: bool) -> None:
    page.locator("#f-description").fill(WHAT[lang])
    for radio in [*CHOICES, DANGER[danger]]:
        page.locator(radio).check()


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_every_state_of_the_form_passes_every_axe_rule(
    browser: Browser, limited: Server, lang: str
) -> None:
    context = context_for(browser, lang)
    page = context.new_page()
    states = States(page, lang)
    form = limited.url(f"{lang_prefix(lang)}/report")

    states.check("form", page.goto(form), 200)
    page.locator("#f-when").fill("Friday")
    states.check("form with errors", send(page), 422)
    fill(page, lang, danger=True)
    token = page.locator("input[name=token]").input_value()
    answer = send(page)
    assert RECEIPT_CODE.match(page.locator("#receipt-code").get_attribute("value") or "")
    states.check("receipt, danger now", answer, 200)

    # The same form sent again (its token): received before, its code not shown again.
    page.goto(form)
    fill(page, lang, danger=False)
    page.locator("input[name=token]").evaluate("(el, value) => el.value = value", token)
    states.check("received before", send(page), 409)

    # A form whose token was tampered with: the form again, with a notice.
    page.goto(form)
    fill(page, lang, danger=False)
    page.locator("input[name=token]").evaluate("el => el.value = el.value.slice(0, -2) + 'xx'")
    states.check("form with a notice", send(page), 400)
    context.close()
    states.assert_none()


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_every_state_of_the_status_page_passes_every_axe_rule(
    browser: Browser, limited: Server, lang: str
) -> None:
    context = context_for(browser, lang)
    page = context.new_page()
    states = States(page, lang)
    page.goto(limited.url(f"{lang_prefix(lang)}/report"))
    fill(page, lang, danger=False)
    send(page)
    code = page.locator("#receipt-code").get_attribute("value") or ""
    status = limited.url(f"{lang_prefix(lang)}/status")

    states.check("status look-up", page.goto(status), 200)
    page.locator("#f-code").fill(code)
    states.check("status of a report", send(page), 200)
    page.goto(status)
    page.locator("#f-code").fill(WRONG_CODE)
    answer = send(page)
    assert answer is not None
    states.check("status: a wrong code", answer, answer.status)
    assert page.locator(".error-summary a[href='#f-code']").count() == 1
    context.close()
    states.assert_none()


def busy_page(server: Server, path: str, locale: str) -> bytes:
    """The page a client gets while it holds every connection it may: 503, the busy page."""
    with ExitStack() as held:
        host, port = server.base_url.removeprefix("http://").split(":")
        for _ in range(CONNECTIONS):
            held.enter_context(socket.create_connection((host, int(port)), timeout=30))
        request = urllib.request.Request(
            server.url(path), headers={"Accept-Language": locale}, method="GET"
        )
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            assert error.code == 503, error.code
            return error.read()
    raise AssertionError("the service answered although every connection was held")


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_error_pages_pass_every_axe_rule(browser: Browser, limited: Server, lang: str) -> None:
    context = context_for(browser, lang)
    page = context.new_page()
    states = States(page, lang)
    # 404: a language the agency does not publish; the page is in the browser's language.
    states.check("404", page.goto(limited.url("/fr/report")), 404)

    # 413: a report far longer than the service reads.
    page.goto(limited.url(f"{lang_prefix(lang)}/report"))
    too_long = "x" * 2_000_000
    page.locator("#f-description").evaluate("(el, text) => el.value = text", too_long)
    states.check("413", send(page), 413)

    # 503: the busy page, as the service sent it while this client held every connection;
    # shown at its own address, its stylesheet and logo then load as on any page.
    busy = busy_page(limited, f"{lang_prefix(lang)}/status", LOCALES[lang])
    address = limited.url(f"{lang_prefix(lang)}/busy-page-as-sent")

    def answer(route: Route) -> None:
        route.fulfill(status=503, body=busy, content_type="text/html; charset=utf-8")

    page.route(address, answer)
    states.check("503", page.goto(address), 503)
    context.close()
    states.assert_none()


# Last in this file: it spends the address's reports.
@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_form_refused_at_the_limit_passes_every_axe_rule(
    browser: Browser, limited: Server, lang: str
) -> None:
    context = context_for(browser, lang)
    page = context.new_page()
    states = States(page, lang)
    # Reports from this address until one is refused: the form, kept, with the notice.
    for _ in range(15):
        page.goto(limited.url(f"{lang_prefix(lang)}/report"))
        fill(page, lang, danger=False)
        answer = send(page)
        assert answer is not None and answer.status in {200, 429}, answer and answer.status
        if answer.status == 429:
            break
    states.check("form refused at the limit", answer, 429)
    assert page.locator("#f-description").input_value() == WHAT[lang]
    context.close()
    states.assert_none()


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_status_page_refused_at_the_limit_passes_every_axe_rule(
    browser: Browser, limited: Server, lang: str
) -> None:
    context = context_for(browser, lang)
    page = context.new_page()
    states = States(page, lang)
    for _ in range(20):
        page.goto(limited.url(f"{lang_prefix(lang)}/status"))
        page.locator("#f-code").fill(WRONG_CODE)
        answer = send(page)
        assert answer is not None
        if answer.status == 429:
            break
    states.check("status refused at the limit (429)", answer, 429)
    context.close()
    states.assert_none()

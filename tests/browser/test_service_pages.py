"""The report service's pages as audit tools (Lighthouse) read them in Chromium: the page's
icon loads, so the console shows no failed request, and the site's robots.txt can be read
as the page, under the page's own CSP. And the conversation with the person who reported,
on the status page and the staff case page, as axe-core reads it with every rule, on a
desktop screen and a 320 px wide one, in each language."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests.browser.conftest import Server, _serve
from tests.browser.support import (
    RECEIPT_CODE,
    SITE_LANGUAGES,
    axe_violations,
    describe,
    lang_prefix,
    overflow_problems,
)
from tests.browser.test_staff_pages import (
    DESKTOP,
    LOCALES,
    PHONE,
    SCROLL_WIDTH_JS,
    Checks,
    add_account,
    enrol,
    new_context,
    sign_in,
    submit,
)

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
    page.on("response", lambda r: icons.append(r.status) if "/logo." in r.url else None)
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


# -- the conversation with the person who reported --------------------------------------

# Long, as some addresses are: the thread names who wrote each message to the tipster.
THREAD_INTAKE = "intake.officer.with.a.long.address@harbor-county-schools.example.org"
QUESTIONS = {
    "en": "Do you know which class the student is in, and when he said it?",
    "es": "¿Sabe en qué curso está el alumno y cuándo lo dijo?",
}
# With a link as long as a phone screen is wide, which must wrap rather than widen the page.
ANSWERS = {
    "en": "He is in 10th grade. He posted it here: "
    "https://social.example.org/posts/2c1f0e9ab4d7c3e8f6a5b2d1c0e9f8a7b6c5d4e3f2a1b0c9d8e7f6",
    "es": "Está en décimo curso. Lo publicó aquí: "
    "https://social.example.org/posts/9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d",
}
# A busy 2-core CI machine: every wait is on an event, and each may take its time.
TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class Conversation:
    server: Server
    intake: BrowserContext
    """The intake user, signed in: its cookie opens the case pages in other browsers."""
    reports: dict[str, tuple[str, str]]
    """Per language, a report's receipt code and reference: each with the team's question
    and the tipster's answer."""


def slow_machine_context(
    browser: Browser, server: Server, lang: str = "en", width: int = DESKTOP["width"]
) -> BrowserContext:
    viewport = PHONE if width == PHONE["width"] else DESKTOP
    context, _ = new_context(browser, server, locale=LOCALES[lang], viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


def open_status(page: Page, server: Server, lang: str, code: str) -> None:
    page.goto(server.url(f"{lang_prefix(lang)}/status"))
    page.locator("#f-code").fill(code)
    assert submit(page).status == 200
    assert page.locator("article.message").count() >= 1


def write_to_team(page: Page, text: str) -> int:
    page.locator("#f-message").fill(text)
    return submit(page, "button[name=action][value=send]").status


@pytest.fixture(scope="module")
def thread_server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: its intake user is the first, so the team key exists before
    the reports are sent (on the shared server the inbox suite's intake user is first)."""
    yield from _serve(tmp_path_factory.mktemp("conversation-pages"))


@pytest.fixture(scope="module")
def conversation(browser: Browser, thread_server: Server) -> Iterator[Conversation]:
    server = thread_server
    intake = slow_machine_context(browser, server)
    desk = intake.new_page()
    secret = enrol(desk, server, add_account(server, THREAD_INTAKE, "intake"))
    sign_in(desk, server, THREAD_INTAKE, secret)
    reports = {}
    for lang in SITE_LANGUAGES:
        tipster = slow_machine_context(browser, server, lang)
        page = tipster.new_page()
        page.goto(server.url(f"{lang_prefix(lang)}/report"))
        send_report(page)
        code = page.locator("#receipt-code").get_attribute("value")
        assert RECEIPT_CODE.match(code), code
        desk.goto(server.url("/staff/?view=all"))
        ref = desk.locator("main > table.cases a").first.inner_text()  # newest first
        desk.goto(server.url(f"/staff/reports/{ref}"))
        desk.locator("#message").fill(QUESTIONS[lang])
        assert submit(desk, "form:has(#message) button[type=submit]").status == 200
        open_status(page, server, lang, code)
        assert write_to_team(page, ANSWERS[lang]) == 200
        tipster.close()
        reports[lang] = (code, ref)
    desk.close()
    yield Conversation(server, intake, reports)
    intake.close()


def fit_problems(page: Page, width: int) -> list[str]:
    if width != PHONE["width"]:
        return []
    scroll_width = page.evaluate(SCROLL_WIDTH_JS)
    found = [] if scroll_width <= width else [f"the page is {scroll_width}px wide in {width}px"]
    return found + overflow_problems(page)


@pytest.mark.parametrize("width", [DESKTOP["width"], PHONE["width"]], ids=["desktop", "320px"])
@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_a_conversation_passes_every_axe_rule_and_fits_a_phone(
    browser: Browser, conversation: Conversation, lang: str, width: int
) -> None:
    server, (code, ref) = conversation.server, conversation.reports[lang]
    checks, fit = Checks(), {}

    def look(page: Page, state: str) -> None:
        assert page.locator("html").get_attribute("lang") == lang, state
        checks.run(page, state)
        if problems := fit_problems(page, width):
            fit[state] = problems

    # The intake user, in the same language, asks a question: the thread waits for an answer.
    staff = slow_machine_context(browser, server, lang, width)
    staff.add_cookies(conversation.intake.cookies())
    desk = staff.new_page()
    desk.goto(server.url(f"/staff/reports/{ref}"))
    desk.locator("#message").fill(f"{QUESTIONS[lang]} ({width}px)")
    assert submit(desk, "form:has(#message) button[type=submit]").status == 200
    look(desk, "case: waiting for the answer")

    # The tipster: the conversation as the code opens it, after a message, with an error.
    tipster = slow_machine_context(browser, server, lang, width)
    page = tipster.new_page()
    open_status(page, server, lang, code)
    assert page.locator("article.message.from-team").count() >= 2
    assert page.locator("article.message:not(.from-team)").count() >= 1
    assert f"{QUESTIONS[lang]} ({width}px)" in page.locator("main").inner_text()
    assert page.locator(".status-result strong").count() == 1  # the team has written
    look(page, "status with a conversation")
    assert write_to_team(page, f"{ANSWERS[lang]} ({width}px)") == 200
    assert page.locator(".notice[role=status]").count() == 1
    look(page, "status: message sent")
    assert write_to_team(page, "   ") == 422
    assert page.locator(".error-summary[role=alert] a[href='#f-message']").count() == 1
    look(page, "status: empty message refused")
    tipster.close()

    # The intake user: the inbox flags the answer; the case shows it.
    desk.goto(server.url("/staff/?view=messages"))
    row = desk.locator("main > table.cases tr", has=desk.locator(f"a:text-is('{ref}')"))
    assert row.locator("strong.flag").count() == 1
    look(desk, "inbox: new messages")
    desk.goto(server.url(f"/staff/reports/{ref}"))
    assert desk.locator("#thread ~ article.message:not(.from-tipster)").count() >= 2
    assert desk.locator("#thread ~ article.message.from-tipster").count() >= 2
    assert f"{ANSWERS[lang]} ({width}px)" in desk.locator("main").inner_text()
    look(desk, "case with a conversation")
    staff.close()

    checks.assert_none()
    assert fit == {}, "\n".join(f"{state}:\n{describe(lines)}" for state, lines in fit.items())


@pytest.mark.parametrize("lang", SITE_LANGUAGES)
def test_the_emergency_note_is_in_a_landmark(browser: Browser, served: Server, lang: str) -> None:
    context = slow_machine_context(browser, served, lang)
    page = context.new_page()
    page.goto(served.url(f"{lang_prefix(lang)}/status"))
    problems = axe_violations(page, javascript=False, every_rule=True)
    context.close()
    assert problems == [], describe(problems)

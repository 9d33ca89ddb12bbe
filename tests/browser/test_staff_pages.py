"""The team's inbox in a real browser, JavaScript off: every page and state of /staff/.

Accounts are added with `outreach staff add`, as an operator adds them, then enrolled and
signed in through the pages: the key read from the enrolment page, codes made with pyotp.
Each page and state passes every axe-core rule (best practices included), nothing is
requested from another origin, no cookie is set before a sign-in completes, Tab visits the
skip link first and then every control in order with a visible focus, and the inbox and a
case page fit a 320 px wide screen.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, ViewportSize

from tests.browser.conftest import OUTREACH, Server
from tests.browser.support import (
    FOCUS_SHOWN_JS,
    Traffic,
    axe_violations,
    describe,
    overflow_problems,
)
from tests.conftest import require_tool

pytestmark = pytest.mark.browser

PASSWORD = "lantern orbit meadow 42"
INTAKE = "intake.officer.on.duty@harbor-county-schools.example.org"
# Long, as some addresses are: the case page lists it among the colleagues to assign to.
NEWCOMER = "newcomer.with.a.rather.long.address@harbor-county-schools.example.org"
PARTNER = "harbor-schools"
URGENT_TEXT = "He said he has a knife in his bag and will use it at lunch today."
ORDINARY_TEXT = "A student keeps posting about the anniversary of a shooting."
NOTE = "Called the school counsellor; they will talk to the family tomorrow."
PHONE: ViewportSize = {"width": 320, "height": 640}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
LOCALES = {"en": "en-US", "es": "es-ES"}
SCROLL_WIDTH_JS = "() => document.scrollingElement.scrollWidth"


def add_account(server: Server, email: str, role: str) -> str:
    """`outreach staff add` against the served data folder; the enrolment link's path."""
    env = {**os.environ, "OUTREACH_DATA_DIR": str(server.data_dir)}
    done = subprocess.run(
        [str(OUTREACH), "staff", "add", email, "--role", role],
        cwd=server.data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    link = done.stdout.strip().splitlines()[-1]
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def submit(page: Page, button: str = "main form button[type=submit]") -> Response:
    with page.expect_navigation() as navigation:
        page.locator(button).click()
    answer = navigation.value
    assert answer is not None
    return answer


@dataclass
class Checks:
    """axe-core's findings, per page and state, gathered on the way."""

    found: dict[str, list[str]] = field(default_factory=dict)

    def run(self, page: Page, state: str) -> None:
        problems = axe_violations(page, javascript=False, every_rule=True)
        if problems:
            self.found[state] = problems

    def assert_none(self) -> None:
        assert self.found == {}, "\n".join(
            f"{state}:\n{describe(lines)}" for state, lines in self.found.items()
        )


@dataclass
class Member:
    email: str
    totp_secret: str
    context: BrowserContext
    traffic: Traffic

    def page(self, path: str, server: Server) -> Page:
        tab = self.context.new_page()
        tab.goto(server.url(path))
        return tab


def new_context(
    browser: Browser,
    server: Server,
    locale: str = "en-US",
    viewport: ViewportSize | None = None,
) -> tuple[BrowserContext, Traffic]:
    context = browser.new_context(
        java_script_enabled=False, locale=locale, viewport=viewport or DESKTOP
    )
    return context, Traffic(server.base_url).watch(context)


def enrol(page: Page, server: Server, link: str) -> str:
    """Enrol through the page from *link*; the key of the authenticator app."""
    page.goto(server.url(link))
    secret = page.locator("main code").inner_text().replace(" ", "")
    page.locator("#password").fill(PASSWORD)
    page.locator("#again").fill(PASSWORD)
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    assert submit(page).status == 200
    assert page.locator(".recovery-codes li").count() == 10
    return secret


def next_code(secret: str) -> str:
    """A code for the next time step: newer than the one just used, and still accepted."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def sign_in(page: Page, server: Server, email: str, secret: str) -> None:
    page.goto(server.url("/staff/sign-in"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    assert submit(page).status == 200
    page.locator("#code").fill(next_code(secret))
    answer = submit(page)
    assert answer.status == 200 and page.url == server.url("/staff/"), page.url


def file_report(browser: Browser, server: Server, text: str, danger_now: bool) -> None:
    context, traffic = new_context(browser, server)
    page = context.new_page()
    page.goto(server.url("/report"))
    page.locator("#f-description").fill(text)
    for radio in ["#f-area-1", "#f-setting-1", "#f-concern-1"]:
        page.locator(radio).check()
    page.locator("#f-danger_now-1" if danger_now else "#f-danger_now-2").check()
    assert submit(page).status == 200
    assert traffic.third_party() == []
    context.close()


@dataclass
class Team:
    server: Server
    members: dict[str, Member]
    urgent_ref: str
    ordinary_ref: str

    def third_party(self) -> list[str]:
        return [url for m in self.members.values() for url in m.traffic.third_party()]


@pytest.fixture(scope="module")
def team(browser: Browser, served: Server) -> Iterator[Team]:
    """One signed-in browser per role, and two reports: one danger-now, one ordinary.

    The intake user enrols first, so the team key exists before the reports are sent; a
    second intake user enrols later and waits for a colleague to grant access."""
    members = {}
    for role, email in [
        ("intake", INTAKE),
        ("admin", "admin@example.org"),
        ("auditor", "auditor@example.org"),
        (f"partner:{PARTNER}", "partner@example.org"),
    ]:
        context, traffic = new_context(browser, served)
        page = context.new_page()
        secret = enrol(page, served, add_account(served, email, role))
        sign_in(page, served, email, secret)
        page.close()
        members[role.split(":")[0]] = Member(email, secret, context, traffic)
    waiting, _ = new_context(browser, served)
    enrol(waiting.new_page(), served, add_account(served, NEWCOMER, "intake"))
    waiting.close()

    file_report(browser, served, URGENT_TEXT, danger_now=True)
    file_report(browser, served, ORDINARY_TEXT, danger_now=False)
    inbox = members["intake"].page("/staff/?view=all", served)
    refs = inbox.locator("main > table.cases a").evaluate_all("els => els.map(a => a.textContent)")
    inbox.close()
    # Newest first: the ordinary report was sent last.
    yield Team(served, members, urgent_ref=refs[1], ordinary_ref=refs[0])
    for member in members.values():
        member.context.close()


def test_enrolment_and_sign_in_pages_pass_axe_and_set_no_cookie_before_the_code(
    browser: Browser, team: Team
) -> None:
    server = team.server
    link = add_account(server, "enrolling@example.org", "auditor")
    context, traffic = new_context(browser, server)
    page = context.new_page()
    checks = Checks()

    page.goto(server.url(link))
    checks.run(page, "enrolment")
    secret = page.locator("main code").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    # Filled in, so the browser's own checks of required fields let the form go.
    page.locator("#password").fill("too short")
    page.locator("#again").fill("not the same")
    page.locator("#code").fill("000000")
    assert submit(page).status == 422
    assert page.locator(".error-summary[role=alert] a[href='#password']").count() == 1
    checks.run(page, "enrolment with errors")
    page.locator("#password").fill(PASSWORD)
    page.locator("#again").fill(PASSWORD)
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    assert submit(page).status == 200
    checks.run(page, "recovery codes")

    with page.expect_navigation():
        page.locator("main a.button").click()
    checks.run(page, "sign-in")
    page.locator("#email").fill("enrolling@example.org")
    page.locator("#password").fill("not the password at all")
    assert submit(page).status == 401
    checks.run(page, "sign-in error")
    page.locator("#password").fill(PASSWORD)
    assert submit(page).status == 200
    checks.run(page, "code")
    page.locator("#code").fill("000000" if next_code(secret) != "000000" else "111111")
    assert submit(page).status == 401
    checks.run(page, "code error")
    assert context.cookies() == [] and traffic.cookies_set() == []

    page.locator("#code").fill(next_code(secret))
    assert submit(page).status == 200
    cookies = context.cookies()
    assert [c["name"] for c in cookies] == ["outreach-staff"], cookies
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    checks.run(page, "home (auditor)")
    context.close()
    assert traffic.third_party() == []
    checks.assert_none()


def test_inbox_and_case_pages_pass_axe_in_every_state(team: Team) -> None:
    server, intake = team.server, team.members["intake"]
    checks = Checks()
    page = intake.page("/staff/", server)
    assert page.locator(".urgent-box a", has_text=team.urgent_ref).count() == 1
    checks.run(page, "inbox with the urgent box")
    page.goto(server.url("/staff/?view=mine"))
    assert page.locator("main > table").count() == 0
    checks.run(page, "empty view")

    page.goto(server.url(f"/staff/reports/{team.urgent_ref}"))
    assert URGENT_TEXT in page.locator("main").inner_text()
    checks.run(page, "danger-now case")
    page.goto(server.url(f"/staff/reports/{team.ordinary_ref}"))
    assert ORDINARY_TEXT in page.locator("main").inner_text()
    checks.run(page, "case")
    page.locator("#note").fill(NOTE)
    submit(page, "form:has(#note) button[type=submit]")
    assert page.locator(".note", has_text=NOTE).count() == 1
    checks.run(page, "case with a note")
    answer = submit(page, "form:has(input[name=outcome]) button[type=submit]")
    assert answer.status == 422
    assert page.locator(".error-summary[role=alert]").is_visible()
    checks.run(page, "case: closed without an outcome")
    page.locator("#outcome-referral").check()
    assert submit(page, "form:has(input[name=outcome]) button[type=submit]").status == 200
    assert page.locator("input[name=action][value=reopen]").count() == 1
    checks.run(page, "closed case")
    page.goto(server.url("/staff/reports/R-NOSUCH00"))
    checks.run(page, "404 message")
    page.close()
    assert team.third_party() == []
    checks.assert_none()


def test_team_audit_home_and_message_pages_pass_axe(team: Team) -> None:
    server, members = team.server, team.members
    checks = Checks()
    pages = [
        ("admin", "/staff/", "home (admin)"),
        ("admin", "/staff/team", "team (admin)"),
        ("intake", "/staff/team", "team (intake)"),
        ("auditor", "/staff/", "home (auditor)"),
        ("auditor", "/staff/audit", "audit trail"),
        ("partner", "/staff/", "home (partner)"),
        ("auditor", "/staff/team", "403 message"),
    ]
    for role, path, state in pages:
        page = members[role].page(path, server)
        if state == "team (intake)":
            assert page.locator("main form", has_text=NEWCOMER).count() == 1
        if state == "403 message":
            assert page.locator("h1").inner_text().startswith("Your account may not")
        checks.run(page, state)
        page.close()
    assert team.third_party() == []
    checks.assert_none()


# Every stop Tab should make on a page, in document order: links, buttons and fields that
# show, one per radio group. Each gets its place in the order as data-tab-stop.
_MARK_STOPS_JS = """
() => {
  const groups = new Set();
  const stops = [];
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea';
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || !el.checkVisibility({visibilityProperty: true})) continue;
    if (el.type === 'radio') {
      if (groups.has(el.name)) continue;
      groups.add(el.name);
    }
    el.dataset.tabStop = String(stops.length);
    stops.push(el);
  }
  return stops.length;
}
"""

_FOCUS_STATE_JS = f"""
() => {{
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  return [el.dataset.tabStop ?? null, el.outerHTML.slice(0, 80), ({FOCUS_SHOWN_JS})(), outlined];
}}
"""


def tab_order_problems(page: Page) -> list[str]:
    """Tab from the top: the skip link first, then every control in order, each one
    on screen with a visible outline."""
    count = page.evaluate(_MARK_STOPS_JS)
    first = page.locator("[data-tab-stop='0']")
    problems = [] if first.get_attribute("class") == "skip-link" else ["the skip link is not first"]
    for expected in range(count):
        page.keyboard.press("Tab")
        stop, element, shown, outlined = page.evaluate(_FOCUS_STATE_JS)
        if stop != str(expected):
            return [*problems, f"Tab {expected + 1} reached {element}, not stop {expected}"]
        if not (shown and outlined):
            problems.append(f"focus not visible on {element}")
    return problems


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (None, "/staff/sign-in"),
        (None, "enrol"),
        ("intake", "/staff/"),
        ("intake", "urgent case"),
        ("admin", "/staff/team"),
    ],
    ids=["sign-in", "enrolment", "inbox", "case", "team"],
)
def test_tab_visits_the_skip_link_then_every_control_with_a_visible_focus(
    browser: Browser, team: Team, role: str | None, path: str
) -> None:
    server = team.server
    if path == "enrol":
        path = add_account(server, f"keyboard-{time.monotonic_ns()}@example.org", "auditor")
    elif path == "urgent case":
        path = f"/staff/reports/{team.urgent_ref}"
    if role is None:
        context, _ = new_context(browser, server)
        page = context.new_page()
        page.goto(server.url(path))
    else:
        context = None
        page = team.members[role].page(path, server)
    problems = tab_order_problems(page)
    page.close()
    if context is not None:
        context.close()
    assert problems == [], describe(problems)


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("which", ["inbox", "case"])
def test_inbox_and_case_fit_a_320_px_screen(
    browser: Browser, team: Team, which: str, lang: str
) -> None:
    path = "/staff/?view=all" if which == "inbox" else f"/staff/reports/{team.urgent_ref}"
    # The intake user's session, in a phone browser set to the language.
    context, traffic = new_context(browser, team.server, locale=LOCALES[lang], viewport=PHONE)
    context.add_cookies(team.members["intake"].context.cookies())
    page = context.new_page()
    page.goto(team.server.url(path))
    assert page.locator("html").get_attribute("lang") == lang
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    problems = overflow_problems(page)
    checks = Checks()
    checks.run(page, f"{which} at 320 px")
    context.close()
    assert traffic.third_party() == []
    assert width <= PHONE["width"], width
    assert problems == [], describe(problems)
    checks.assert_none()


def test_a_spanish_browser_gets_the_spanish_sign_in_page(browser: Browser, team: Team) -> None:
    context, traffic = new_context(browser, team.server, locale="es-ES")
    page = context.new_page()
    page.goto(team.server.url("/staff/sign-in"))
    lang = page.locator("html").get_attribute("lang")
    heading = page.locator("h1").inner_text()
    checks = Checks()
    checks.run(page, "sign-in (es)")
    context.close()
    assert (lang, heading) == ("es", "Iniciar sesión")
    assert traffic.third_party() == []
    checks.assert_none()


# -- requests for information: the school district asked about one report ------------------

STUDENT = "Jordan Example, 10th grade"
QUESTION = "Do you know of earlier incidents with the student named in this report?"
REASON = "He said he would bring a knife to school on Friday."
ANSWER = "Two earlier incidents in 2025: a fight in March, threats online in May."


def file_named_report(browser: Browser, server: Server) -> None:
    context, _ = new_context(browser, server)
    page = context.new_page()
    page.goto(server.url("/report"))
    page.locator("#f-description").fill("A student says he will bring a knife on Friday.")
    for radio in ["#f-area-1", "#f-setting-1", "#f-concern-1", "#f-danger_now-2"]:
        page.locator(radio).check()
    page.locator("#f-people").fill(STUDENT)
    assert submit(page).status == 200
    context.close()


def test_the_district_is_asked_answers_and_exports_its_disclosure_record(
    browser: Browser, team: Team, tmp_path: Path
) -> None:
    pdftotext = require_tool("pdftotext", "reading the disclosure record's PDF (poppler-utils)")
    server, intake, school = team.server, team.members["intake"], team.members["partner"]
    checks = Checks()
    file_named_report(browser, server)
    page = intake.page("/staff/?view=all", server)
    ref = page.locator("main > table.cases a").first.inner_text()
    page.goto(server.url(f"/staff/reports/{ref}"))
    checks.run(page, "case with the requests section")
    with page.expect_navigation():
        page.locator("#requests ~ ul a", has_text="Harbor Unified School District").click()
    assert STUDENT in page.locator("main").inner_text()
    checks.run(page, "new request")
    assert tab_order_problems(page) == []
    page.locator("#field-people").check()
    assert submit(page).status == 422  # no question yet
    checks.run(page, "new request with errors")
    page.locator("#question").fill(QUESTION)
    page.locator("#reason").fill(REASON)
    page.set_viewport_size(PHONE)
    assert overflow_problems(page) == [] and page.evaluate(SCROLL_WIDTH_JS) <= PHONE["width"]
    page.set_viewport_size(DESKTOP)
    assert submit(page).status == 200
    assert QUESTION in page.locator("#requests ~ article").first.inner_text()

    partner = school.page("/staff/", server)
    checks.run(page, "case with a request waiting")
    checks.run(partner, "partner inbox with a request")
    with partner.expect_navigation():
        partner.locator("main a", has_text="Request ").first.click()
    shown = partner.locator("main").inner_text()
    assert QUESTION in shown and REASON in shown and STUDENT in shown
    assert "knife on Friday" not in shown  # the report's own words are not the district's
    checks.run(partner, "request (partner)")
    assert tab_order_problems(partner) == []
    partner.set_viewport_size(PHONE)
    assert overflow_problems(partner) == [] and partner.evaluate(SCROLL_WIDTH_JS) <= PHONE["width"]
    partner.set_viewport_size(DESKTOP)
    partner.locator("#category-incidents").check()
    partner.locator("#answer").fill(ANSWER)
    assert submit(partner, "form:has(#answer) button[type=submit]").status == 200
    checks.run(partner, "answered request")

    page.goto(server.url(f"/staff/reports/{ref}"))  # a new load, not a jump to #requests
    assert ANSWER in page.locator("main").inner_text()
    checks.run(page, "case with an answer")

    partner.goto(server.url("/staff/disclosures"))
    assert ref in partner.locator("main table").inner_text()
    checks.run(partner, "disclosure record")
    month = time.strftime("%Y-%m", time.gmtime())
    pdf = school.context.request.get(server.url(f"/staff/disclosures?month={month}&format=pdf"))
    assert pdf.ok and pdf.body().startswith(b"%PDF-")
    (tmp_path / "record.pdf").write_bytes(pdf.body())
    text = subprocess.run(
        [pdftotext, str(tmp_path / "record.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert ref in flat and REASON in flat and "Earlier incidents and discipline" in flat
    partner.close()

    audit = team.members["auditor"].page("/staff/audit", server)
    trail = audit.locator("main table").inner_text()
    for action in ("request_sent", "request_viewed", "request_answered", "disclosures_exported"):
        assert action in trail, action
    for secret in (QUESTION, REASON, ANSWER, STUDENT):
        assert secret not in trail
    audit.close()
    page.close()
    assert team.third_party() == []
    checks.assert_none()

"""The anonymous conversation worked from end to end in a real browser, JavaScript off.

A tipster files a report in Spanish and keeps the receipt code; an intake user signs in
(password, then a code from the app), opens the report and writes a question; the tipster,
back later in a browser of their own, enters the code on the Spanish status page, reads
the question and answers; the intake user's inbox flags the report, and the answer reads
on the case. No public page sets a cookie, no page asks another origin for anything, and
neither the answer nor the receipt code is anywhere on disk in the clear: not in the
database, its write-ahead log, or the service's log.

A server of its own, as the staff journey has: its intake user is the first, so the team
key exists before the report is sent, and signs in with a code newer than its enrolment's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from form_service.settings import DATABASE_FILE
from tests.browser.conftest import Server, _serve
from tests.browser.support import RECEIPT_CODE, Traffic, describe, privacy_problems
from tests.browser.test_staff_pages import add_account, enrol, new_context, sign_in, submit

pytestmark = pytest.mark.browser

INTAKE = "intake.conversation@example.org"
# A busy 2-core CI machine: every wait is on an event, and each may take its time.
TIMEOUT_MS = 90_000
CANARY = f"canario-{secrets.token_hex(8)}"
QUESTION_CANARY = f"pregunta-{secrets.token_hex(8)}"
REPORT = "Un compañero dijo en el recreo que traerá un cuchillo a la escuela el viernes."
QUESTION = f"¿Sabe usted en qué curso está el compañero? {QUESTION_CANARY}"
ANSWER = f"Está en décimo curso; lo oí el martes en el patio. Gracias por preguntar. {CANARY}"


@pytest.fixture(scope="module")
def conversation_server(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("conversation"))


@pytest.fixture(scope="module")
def intake_secret(browser: Browser, conversation_server: Server) -> str:
    """The intake user, enrolled (the intake team's key exists from then on), not signed in."""
    context = person(browser, conversation_server)[0]
    secret = enrol(
        context.new_page(), conversation_server, add_account(conversation_server, INTAKE, "intake")
    )
    context.close()
    return secret


def person(
    browser: Browser, server: Server, locale: str = "en-US"
) -> tuple[BrowserContext, Traffic]:
    """A browser of one person's own, JavaScript off, with waits a slow machine can meet."""
    context, traffic = new_context(browser, server, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context, traffic


def file_in_spanish(page: Page, server: Server) -> str:
    """Send a report from /es/report; the receipt code the page shows once."""
    answer = page.goto(server.url("/es/report"))
    assert answer is not None and answer.status == 200
    assert page.locator("html").get_attribute("lang") == "es"
    page.locator("#f-description").fill(REPORT)
    for radio in ["#f-area-1", "#f-setting-1", "#f-concern-1", "#f-danger_now-2"]:
        page.locator(radio).check()
    assert submit(page).status == 200
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text() == "Su reporte fue enviado"
    code = page.locator("#receipt-code").get_attribute("value")
    assert RECEIPT_CODE.match(code), code
    return code


def flagged_row(desk: Page, ref: str) -> str:
    """The text of the report's row in the inbox as it stands."""
    return desk.locator(
        "main > table.cases tr", has=desk.locator(f"a:text-is('{ref}')")
    ).inner_text()


def files_holding(folder: Path, needles: dict[str, str]) -> dict[str, list[str]]:
    """Which of *needles* each file under *folder* holds, as raw bytes (UTF-8 or UTF-16)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, needle in needles.items():
            if any(form in data for form in (needle.encode(), needle.encode("utf-16-le"))):
                found.setdefault(path.name, []).append(name)
    return found


def test_the_team_asks_the_tipster_answers_in_spanish_and_nothing_is_stored_in_the_clear(
    browser: Browser, conversation_server: Server, intake_secret: str
) -> None:
    server = conversation_server
    # 1. The tipster files in Spanish and keeps the code; then closes the browser.
    filing, filing_traffic = person(browser, server, locale="es-ES")
    code = file_in_spanish(filing.new_page(), server)
    problems = privacy_problems(filing_traffic, filing)
    filing.close()

    # 2. The intake user signs in, opens the report and asks a question.
    intake, intake_traffic = person(browser, server)
    desk = intake.new_page()
    sign_in(desk, server, INTAKE, intake_secret)
    assert [c["name"] for c in intake.cookies()] == ["outreach-staff"]
    desk.goto(server.url("/staff/?view=new"))
    (ref,) = desk.locator("main > table.cases a").all_inner_texts()
    with desk.expect_navigation():
        desk.locator("main > table.cases a", has_text=ref).click()
    assert REPORT in desk.locator("main").inner_text()
    thread = desk.locator("#thread ~ article.message")
    assert thread.count() == 0
    desk.locator("#message").fill(QUESTION)
    answer = submit(desk, "form:has(#message) button[type=submit]")
    assert answer.status == 200 and desk.url.endswith(f"/staff/reports/{ref}#thread"), desk.url
    assert thread.count() == 1
    assert QUESTION in thread.first.inner_text()
    assert f"{INTAKE} wrote to them" in thread.first.inner_text()
    assert "Waiting for the person who reported to answer." in desk.locator("main").inner_text()
    desk.goto(server.url("/staff/?view=awaiting"))
    assert "Waiting for their answer" in flagged_row(desk, ref)

    # 3. The tipster, in a browser sharing nothing with the first, reads and answers.
    tipster, tipster_traffic = person(browser, server, locale="es-ES")
    page = tipster.new_page()
    opened = page.goto(server.url("/es/status"))
    assert opened is not None and opened.status == 200
    assert page.locator("html").get_attribute("lang") == "es"
    page.locator("#f-code").fill(code)
    assert submit(page).status == 200
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h2#messages").inner_text() == "Mensajes"
    assert "El equipo le escribió." in page.locator(".status-result").inner_text()
    from_team = page.locator("article.message.from-team")
    assert from_team.count() == 1
    assert from_team.locator("h3").inner_text().startswith("El equipo de prevención escribió")
    assert from_team.locator(".user-text").inner_text() == QUESTION
    assert INTAKE not in page.content(), "the tipster is not told who wrote"
    page.locator("#f-message").fill(ANSWER)
    assert submit(page, "button[name=action][value=send]").status == 200
    assert page.locator(".notice[role=status]").inner_text() == "Su mensaje se envió al equipo."
    mine = page.locator("article.message:not(.from-team)")
    assert mine.count() == 1
    assert mine.locator("h3").inner_text().startswith("Usted escribió")
    assert mine.locator(".user-text").inner_text() == ANSWER
    assert page.locator("#f-message").input_value() == ""
    # The page's next POST carries a new single-use token: looking again needs no code.
    assert submit(page, "button[name=action][value=refresh]").status == 200
    assert page.locator("article.message").count() == 2

    # 4. The inbox flags the report; the intake user opens it and reads the answer.
    flag = "New message from the person who reported"
    desk.goto(server.url("/staff/"))
    assert flag in flagged_row(desk, ref)
    desk.goto(server.url("/staff/?view=messages"))
    assert desk.locator("main > table.cases a").all_inner_texts() == [ref]
    with desk.expect_navigation():
        desk.locator("main > table.cases a", has_text=ref).click()
    replies = desk.locator("#thread ~ article.message.from-tipster")
    assert replies.count() == 1
    assert replies.locator(".user-text").inner_text() == ANSWER
    assert replies.locator("h3").inner_text().startswith("The person who reported wrote")
    assert "Waiting for the person who reported" not in desk.locator("main").inner_text()
    # Read: the flag is gone.
    desk.goto(server.url("/staff/?view=messages"))
    assert desk.locator("main > table.cases").count() == 0
    desk.goto(server.url("/staff/"))
    assert flag not in flagged_row(desk, ref)

    # The tipster's browser holds no cookie, and no public response tried to set one.
    problems += privacy_problems(tipster_traffic, tipster)
    problems += [f"third-party request (staff): {url}" for url in intake_traffic.third_party()]
    intake.close()
    tipster.close()
    assert problems == [], describe(problems)

    # 5. On disk: the database (with its -wal and -shm), the log and the built site hold
    # neither the answer, nor the question, nor the code, in any form it is written in.
    database = server.data_dir / DATABASE_FILE
    on_disk = {p.name for p in server.data_dir.rglob("*") if p.is_file()}
    # The service runs in WAL mode and is still running: its log of writes is there too.
    assert {database.name, f"{database.name}-wal"} <= on_disk, on_disk
    # The scan reads what the service wrote: the report's reference is kept in the clear.
    assert files_holding(server.data_dir, {"ref": ref}), on_disk
    secrets_ = {
        "answer": CANARY,
        "question": QUESTION_CANARY,
        "code": code,
        "code (no dashes)": code.replace("-", ""),
        "code (lower case)": code.lower(),
    }
    assert files_holding(server.log.parent, secrets_) == {}

"""One report worked from end to end in a real browser with JavaScript off, each person in
a browser of their own: a tipster files a school report, an intake user signs in (password,
then a code from the app), opens it held for review and releases it to the school district;
a user of the district signs in, sees only what its agreement allows and records its
outcome; the intake user sees that outcome on the case. No public page sets a cookie, no
page asks another origin for anything, and every staff page on the way passes axe.

A server of its own: each person signs in once here, with a code newer than the one their
enrolment used, whatever the other browser tests did with their accounts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server, _serve
from tests.browser.test_staff_pages import (
    Checks,
    add_account,
    enrol,
    new_context,
    sign_in,
    submit,
)

pytestmark = pytest.mark.browser

INTAKE = "intake.journey@example.org"
SCHOOL = "safety.lead@harbor-schools.example.org"
SCHOOL_NAME = "Harbor Unified School District"
TEXT = "A student drew the school's floor plan with exits crossed out. canary-journey-8d2e"
CONTACT = "Robin Contact-Canary"
PUBLIC = ["/", "/report", "/status", "/es/", "/es/report"]


@pytest.fixture(scope="module")
def journey(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("journey"))


@pytest.fixture(scope="module")
def enrolled(browser: Browser, journey: Server) -> dict[str, str]:
    """The intake user and the school's user, enrolled (the intake team's key and the
    school's key exist from then on), neither signed in yet."""
    found = {}
    for email, role in ((INTAKE, "intake"), (SCHOOL, "partner:harbor-schools")):
        context, _ = new_context(browser, journey)
        found[email] = enrol(context.new_page(), journey, add_account(journey, email, role))
        context.close()
    return found


def tipster_files_a_school_report(browser: Browser, server: Server) -> None:
    context, traffic = new_context(browser, server)
    page = context.new_page()
    for path in PUBLIC:
        answer = page.goto(server.url(path))
        assert answer is not None and answer.status == 200, path
    page.goto(server.url("/report"))
    page.locator("#f-description").fill(TEXT)
    page.locator("input[name=area][value=north]").check()
    page.locator("input[name=setting][value=school]").check()
    page.locator("input[name=concern][value=not_sure]").check()
    page.locator("#f-danger_now-2").check()
    page.locator("#f-contact_name").fill(CONTACT)
    assert submit(page).status == 200
    assert "Your report was sent" in page.locator("main").inner_text()
    assert traffic.third_party() == []
    assert traffic.cookies_set() == [] and context.cookies() == []
    context.close()


def test_a_report_released_to_a_school_and_closed_out_by_it(
    browser: Browser, journey: Server, enrolled: dict[str, str]
) -> None:
    server, checks = journey, Checks()
    tipster_files_a_school_report(browser, server)

    intake, intake_traffic = new_context(browser, server)
    desk = intake.new_page()
    sign_in(desk, server, INTAKE, enrolled[INTAKE])
    assert [c["name"] for c in intake.cookies()] == ["outreach-staff"]
    desk.goto(server.url("/staff/?view=new"))
    (ref,) = desk.locator("main > table.cases a").all_inner_texts()
    with desk.expect_navigation():
        desk.locator("main > table.cases a", has_text=ref).click()
    main = desk.locator("main")
    assert TEXT in main.inner_text() and CONTACT in main.inner_text()
    assert "Held for review" in main.inner_text()
    school_box = desk.locator("#share-harbor-schools")
    assert school_box.is_checked()
    checks.run(desk, "case held for review")
    assert submit(desk, "form:has(input[value=release]) button[type=submit]").status == 200
    assert f"{SCHOOL_NAME}: sent" in desk.locator("main").inner_text()
    checks.run(desk, "case released")

    school, school_traffic = new_context(browser, server)
    lead = school.new_page()
    sign_in(lead, server, SCHOOL, enrolled[SCHOOL])
    assert lead.locator("main a", has_text=ref).count() == 1
    checks.run(lead, "partner inbox")
    with lead.expect_navigation():
        lead.locator("main a", has_text=ref).click()
    seen = lead.locator("main").inner_text()
    assert TEXT in seen
    # The agreement sends contact details only with the reporter's consent: none was given.
    assert CONTACT not in lead.content() and "Contact-Canary" not in seen
    checks.run(lead, "partner case")
    lead.locator("#outcome-support").check()
    assert submit(lead).status == 200
    assert "Support or intervention (" in lead.locator("main").inner_text()
    checks.run(lead, "partner case with its outcome")

    desk.reload()
    assert "their outcome: Support or intervention" in desk.locator("main").inner_text()
    checks.run(desk, "case with the partner's outcome")

    # A download of the figures asks for a new code: a wrong one is refused on the page.
    desk.goto(server.url("/staff/figures"))
    checks.run(desk, "figures")
    desk.locator("#format-json").check()
    desk.locator("#export-code").fill("000000")
    assert submit(desk, "form[action='/staff/figures/export'] button").status == 422
    assert desk.locator(".error-summary[role=alert] a[href='#export-code']").count() == 1
    assert desk.locator("#format-json").is_visible()
    checks.run(desk, "figures: download refused")
    for context in (intake, school):
        context.close()
    assert intake_traffic.third_party() == [] and school_traffic.third_party() == []
    checks.assert_none()

"""The inbox on both databases: reports read by a person, worked to an outcome, audited,
and unreadable at rest without a staff member's password."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from form_service.staff import commands
from tests.databases import Database
from tests.form_service.conftest import code_of, start_client, submit
from tests.form_service.staff.support import CodeClock, Staff, csrf_of, enrol, sign_in

CANARY = "canary-report-7f3a elephant on the roof"
NOTE_CANARY = "note-canary-91bd the cafeteria door"


@dataclass
class Desk:
    client: TestClient
    settings: Settings
    database: Database
    staff: Staff
    clock: CodeClock

    def refs(self, page: str) -> list[str]:
        return re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', page)

    def act(self, ref: str, **fields: str) -> object:
        page = self.client.get(f"/staff/reports/{ref}")
        return self.client.post(
            f"/staff/reports/{ref}", data={"csrf": csrf_of(page.text), **fields}
        )


@pytest.fixture
def desk(
    database: Database, make_settings: Callable[..., Settings], code_clock: CodeClock
) -> Iterator[Desk]:
    settings = make_settings(database_url=database.url, report_client_burst=500)
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "intake@example.org")
        # Reports are sealed to the team key once the service has seen it: at start, and
        # then every minute; a restart reads it at once.
    with start_client(settings) as client:
        sign_in(client, code_clock, staff)
        yield Desk(client, settings, database, staff, code_clock)


def file_report(desk: Desk, **fields: str) -> str:
    with start_client(desk.settings) as tipster:
        answer = submit(tipster, **fields)
        assert answer.status_code == 200, answer.text
        code = code_of(answer.text)
    return code


def status_of(desk: Desk, code: str) -> str:
    with start_client(desk.settings) as tipster:
        page = tipster.post("/status", data={"code": code}).text
    return re.sub(r"\s+", " ", page)


def test_a_new_danger_now_report_is_first_and_acknowledged(desk: Desk) -> None:
    file_report(desk, description="ordinary worry")
    urgent_code = file_report(desk, description=CANARY, danger_now="yes")
    file_report(desk, description="another ordinary worry")
    inbox = desk.client.get("/staff/")
    box = inbox.text.split('id="urgent-title"', 1)[1].split("</section>", 1)[0]
    urgent_refs = desk.refs(box)
    assert len(urgent_refs) == 1
    ref = urgent_refs[0]
    assert "Received" in status_of(desk, urgent_code)
    case = desk.client.get(f"/staff/reports/{ref}")
    assert CANARY in case.text
    desk.act(ref, action="acknowledge")
    assert 'id="urgent-title"' not in desk.client.get("/staff/").text
    assert "Being looked at" in status_of(desk, urgent_code)


def test_closing_needs_an_outcome_and_the_tipster_sees_only_closed(desk: Desk) -> None:
    code = file_report(desk, description=CANARY)
    ref = desk.refs(desk.client.get("/staff/").text)[0]
    refused = desk.act(ref, action="close")
    assert refused.status_code == 422 and "Choose an outcome" in refused.text
    desk.act(ref, action="close", outcome="no_concern")
    closed = desk.client.get("/staff/?view=closed").text
    assert ref in closed and "No concern found" in closed
    status = status_of(desk, code)
    assert "Closed" in status and "No concern" not in status and "no_concern" not in status


def test_notes_are_escaped_sealed_and_bounded(desk: Desk) -> None:
    file_report(desk, description=CANARY)
    ref = desk.refs(desk.client.get("/staff/").text)[0]
    hostile = f"{NOTE_CANARY} <script>alert(1)</script> {{{{ 7*7 }}}} \u202eevil"
    desk.act(ref, action="note", note=hostile)
    page = desk.client.get(f"/staff/reports/{ref}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    shown = re.findall(r'<article class="note">.*?<p class="user-text">(.*?)</p>', page, re.S)
    assert len(shown) == 1 and "{{ 7*7 }}" in shown[0] and "49" not in shown[0]
    assert "\u202e" in shown[0]  # shown as written; the page isolates it (unicode-bidi)
    long_note = "x" * 100_000
    answer = desk.act(ref, action="note", note=long_note)
    assert answer.status_code == 422 and "10,000 characters" in answer.text
    assert long_note in answer.text  # the text is kept for the writer to shorten
    assert NOTE_CANARY.encode() not in desk.database.raw()
    # The report itself is sealed; only partner copies waiting for delivery are plain, and
    # the worker wipes them once sent (tests/form_service/test_anonymity.py).
    sealed = desk.database.rows("SELECT content_age FROM reports")
    assert sealed and all(CANARY.encode() not in bytes(row[0]) for row in sealed)


def test_assigning_and_the_views(desk: Desk) -> None:
    for n in range(3):
        file_report(desk, description=f"worry {n}")
    refs = desk.refs(desk.client.get("/staff/").text)
    user_id = desk.database.rows("SELECT id FROM staff_users")[0][0]
    desk.act(refs[0], action="assign", assignee=str(user_id))
    assert desk.refs(desk.client.get("/staff/?view=mine").text) == [refs[0]]
    refused = desk.act(refs[1], action="assign", assignee="nobody")
    assert refused.status_code == 422
    assert len(desk.refs(desk.client.get("/staff/?view=new").text)) == 2


def test_paging_by_id(desk: Desk) -> None:
    from form_service.staff import inbox_views

    for n in range(5):
        file_report(desk, description=f"worry {n}")
    inbox_views.PAGE_SIZE, saved = 2, inbox_views.PAGE_SIZE
    try:
        first = desk.client.get("/staff/").text
        seen = desk.refs(first)
        page = first
        while (found := re.search(r'before=(\d+)"', page)) is not None:
            page = desk.client.get(f"/staff/?view=open&before={found.group(1)}").text
            seen += desk.refs(page)
    finally:
        inbox_views.PAGE_SIZE = saved
    assert len(seen) == len(set(seen)) == 5


def test_every_view_and_action_is_on_the_audit_trail_without_content(desk: Desk) -> None:
    file_report(desk, description=CANARY)
    ref = desk.refs(desk.client.get("/staff/").text)[0]
    desk.act(ref, action="triage")
    desk.act(ref, action="note", note=NOTE_CANARY)
    desk.act(ref, action="close", outcome="referral")
    rows = desk.database.rows(
        "SELECT actor, action, report_ref, detail FROM staff_audit WHERE report_ref = ?", ref
    )
    actions = [row[1] for row in rows]
    assert {"viewed", "triage", "note_added", "close"} <= set(actions)
    assert all(row[0] == desk.staff.email for row in rows)
    trail = repr(desk.database.rows("SELECT * FROM staff_audit"))
    assert CANARY not in trail and NOTE_CANARY not in trail
    count, problems = commands.verify_audit(desk.settings)
    assert problems == [] and count >= 6


# The report goes to the intake team, Harbor schools and the sheriff's unit, not to Eastwood.
@pytest.mark.parametrize("role", ["admin", "auditor", "partner:eastwood-schools"])
def test_other_roles_cannot_open_a_report(desk: Desk, role: str, code_clock: CodeClock) -> None:
    file_report(desk, description=CANARY)
    ref = desk.refs(desk.client.get("/staff/").text)[0]
    with start_client(desk.settings) as other:
        staff = enrol(other, desk.settings, code_clock, "other@example.org", role)
        sign_in(other, code_clock, staff)
        home = other.get("/staff/")
        assert home.status_code == 200 and ref not in home.text
        answer = other.get(f"/staff/reports/{ref}")
        assert answer.status_code == 403 and CANARY not in answer.text
        posted = other.post(
            f"/staff/reports/{ref}",
            data={"csrf": csrf_of(home.text), "action": "close", "outcome": "duplicate"},
        )
        assert posted.status_code == 403
    forbidden = desk.database.rows(
        "SELECT actor FROM staff_audit WHERE action = 'forbidden' AND report_ref = ?", ref
    )
    assert forbidden and forbidden[0][0] == "other@example.org"
    assert desk.database.rows("SELECT stage FROM reports") == [("received",)]


def test_a_later_colleague_reads_once_granted_and_a_reset_loses_access(
    desk: Desk, code_clock: CodeClock
) -> None:
    file_report(desk, description=CANARY)
    ref = desk.refs(desk.client.get("/staff/").text)[0]
    with start_client(desk.settings) as later:
        colleague = enrol(later, desk.settings, code_clock, "later@example.org")
        sign_in(later, code_clock, colleague)
        assert CANARY not in later.get(f"/staff/reports/{ref}").text
        team = desk.client.get("/staff/team").text
        assert "later@example.org" in team.split("Accounts")[0]
        user_id = re.search(r'name="user" value="([^"]+)"', team)
        assert user_id
        wrong = desk.client.post(
            "/staff/team",
            data={"csrf": csrf_of(team), "action": "grant", "user": user_id.group(1), "code": "1"},
        )
        assert wrong.status_code == 422  # a sensitive action asks for a fresh code
        desk.client.post(
            "/staff/team",
            data={
                "csrf": csrf_of(team),
                "action": "grant",
                "user": user_id.group(1),
                "code": code_clock.next_code(desk.staff.totp_secret),
            },
        )
        assert CANARY in later.get(f"/staff/reports/{ref}").text
        commands.reset(desk.settings, "later@example.org")
        assert later.get("/staff/", follow_redirects=False).status_code == 303
    assert desk.database.rows(
        "SELECT count(*) FROM group_keys g JOIN staff_users u ON u.id = g.user_id"
        " WHERE u.email = 'later@example.org'"
    ) == [(0,)]

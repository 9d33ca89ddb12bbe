"""Rules with review: true: partners receive a report only when an intake user releases it,
and a partner's users see only what its agreement allows, and record their own outcome."""

from __future__ import annotations

import re
from collections.abc import Callable

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.staff.support import CodeClock, csrf_of, enrol, sign_in

CANARY = "release-canary-5be1 he showed the knife in class"
CONTACT = "Casey Canary-Contact"


def test_review_release_and_the_partners_side(
    database: Database,
    make_settings: Callable[..., Settings],
    reviewed_demo: LoadedProfile,
    code_clock: CodeClock,
) -> None:
    settings = make_settings(database_url=database.url, profile=reviewed_demo)
    with start_client(settings) as setup:
        intake = enrol(setup, settings, code_clock, "intake@example.org")
        school = enrol(
            setup, settings, code_clock, "counselor@example.org", "partner:harbor-schools"
        )
    with start_client(settings) as tipster:
        # A school report, nobody in danger now: two review rules (schools, harm to others).
        sent = submit(
            tipster,
            description=CANARY,
            danger_now="no",
            contact_name=CONTACT,
            concern="harm_others",
        )
        assert sent.status_code == 200
    partners = {row[0] for row in database.rows("SELECT partner_id FROM outbox")}
    assert partners == {"intake-team"}  # the schools and the sheriff wait for review
    with start_client(settings) as desk, start_client(settings) as counselor:
        sign_in(desk, code_clock, intake)
        ref = re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', desk.get("/staff/").text)[0]
        case = desk.get(f"/staff/reports/{ref}").text
        assert "Held for review" in case
        assert 'name="share-harbor-schools" value="1" checked' in case
        assert 'name="share-sheriff-tau" value="1" checked' in case
        sign_in(counselor, code_clock, school)
        assert ref not in counselor.get("/staff/").text  # nothing shared yet
        assert counselor.get(f"/staff/reports/{ref}").status_code == 403
        # The intake user keeps the school, drops the sheriff's unit.
        desk.post(
            f"/staff/reports/{ref}",
            data={"csrf": csrf_of(case), "action": "release", "share-harbor-schools": "1"},
        )
        partners = {row[0] for row in database.rows("SELECT partner_id FROM outbox")}
        assert partners == {"intake-team", "harbor-schools"}
        states = dict(database.rows("SELECT partner_id, state FROM partner_shares"))
        assert states == {"harbor-schools": "shared", "sheriff-tau": "withheld"}
        released = database.rows(
            "SELECT detail FROM staff_audit WHERE action = 'released' AND report_ref = ?", ref
        )
        assert released == [("sent: harbor-schools; withheld: sheriff-tau; added: -",)]
        # The counselor sees the report, without the contact details the tipster kept back.
        assert ref in counselor.get("/staff/").text
        page = counselor.get(f"/staff/reports/{ref}").text
        assert CANARY in page and CONTACT not in page
        closed = counselor.post(
            f"/staff/reports/{ref}", data={"csrf": csrf_of(page), "outcome": "support"}
        )
        assert closed.status_code == 200
        assert database.rows(
            "SELECT outcome FROM partner_shares WHERE partner_id = 'harbor-schools'"
        ) == [("support",)]
        # The intake user sees the school's outcome on the case.
        assert "their outcome: Support or intervention" in desk.get(f"/staff/reports/{ref}").text
    # The partner's copy for its users is sealed; only the outbox copy waits in plain text.
    views = database.rows("SELECT view_age FROM partner_shares WHERE partner_id = 'harbor-schools'")
    assert views[0][0] is not None and CANARY.encode() not in bytes(views[0][0])

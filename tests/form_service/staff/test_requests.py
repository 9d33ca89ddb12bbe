"""Requests for information on both databases: an intake user asks one partner about one
report under its agreement; the partner's users see only the question and the fields the
agreement allows, answer, find nothing or decline; everything sealed, audited, bounded."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from form_service.staff.request_figures import PartnerMonth, tabulate_requests
from form_service.storage import notices
from form_service.storage.requests import RequestFacts
from outreach.loader import LoadedProfile
from tests.conftest import require_tool
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.staff.support import CodeClock, Staff, csrf_of, enrol, sign_in

REPORT_CANARY = "report-canary-31ad the gym bag"
PEOPLE = "Jordan Example, 10th grade at Harbor High"
QUESTION = "question-canary-8c2e Do you know of earlier incidents with this student?"
REASON = "He said he would bring a knife to the gym on Friday."
ANSWER = "answer-canary-6d0f Two earlier incidents in 2025, both resolved with a safety plan."
SCHOOL = "harbor-schools"


@dataclass
class Desks:
    settings: Settings
    database: Database
    intake: TestClient
    school: TestClient
    clock: CodeClock
    staff: dict[str, Staff]

    def file(self, **fields: str) -> str:
        with start_client(self.settings) as tipster:
            filed = {"description": REPORT_CANARY, "people": PEOPLE, "danger_now": "no", **fields}
            answer = submit(tipster, **filed)
            assert answer.status_code == 200, answer.text
        inbox = self.intake.get("/staff/?view=all").text
        return re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', inbox)[0]

    def ask(self, ref: str, partner: str = SCHOOL, **fields: str) -> Any:
        form = self.intake.get(f"/staff/reports/{ref}/requests?partner={partner}")
        data = {
            "csrf": csrf_of(form.text),
            "partner": partner,
            "basis": "ferpa-health-safety",
            "question": QUESTION,
            "reason": REASON,
            "due": "72",
            "field-people": "1",
            **fields,
        }
        return self.intake.post(f"/staff/reports/{ref}/requests", data=data)

    def request_id(self) -> int:
        return int(self.database.rows("SELECT max(id) FROM info_requests")[0][0])

    def answer(self, request_id: int, client: TestClient | None = None, **fields: str) -> Any:
        client = client or self.school
        page = client.get(f"/staff/requests/{request_id}")
        return client.post(
            f"/staff/requests/{request_id}", data={"csrf": csrf_of(page.text), **fields}
        )

    def audit(self, action: str) -> list[tuple[Any, ...]]:
        return self.database.rows(
            "SELECT actor, report_ref, detail FROM staff_audit WHERE action = ? ORDER BY id",
            action,
        )


@pytest.fixture
def desks(
    database: Database,
    make_settings: Callable[..., Settings],
    code_clock: CodeClock,
    reviewed_demo: LoadedProfile,
    keyed_demo: LoadedProfile,
) -> Iterator[Desks]:
    # The demo as shipped: a school report waits for review, so the district is asked about
    # a report it was never sent. The archive key is this test run's.
    archive = keyed_demo.profile.archive
    profile = reviewed_demo.profile.model_copy(update={"archive": archive})
    loaded = LoadedProfile(profile=profile, folder=reviewed_demo.folder, path=reviewed_demo.path)
    settings = make_settings(database_url=database.url, report_client_burst=500, profile=loaded)
    staff = {}
    with start_client(settings) as setup:
        staff["intake"] = enrol(setup, settings, code_clock, "intake@example.org")
        staff["school"] = enrol(
            setup, settings, code_clock, "counselor@example.org", f"partner:{SCHOOL}"
        )
    # A restart reads the team keys at once: reports are sealed to the intake team's.
    with start_client(settings) as intake, start_client(settings) as school:
        sign_in(intake, code_clock, staff["intake"])
        sign_in(school, code_clock, staff["school"])
        yield Desks(settings, database, intake, school, code_clock, staff)


def other_partner(desks: Desks, partner: str) -> Any:
    """A signed-in client of another partner's user (the caller closes it)."""
    client = start_client(desks.settings).__enter__()
    user = enrol(client, desks.settings, desks.clock, f"user@{partner}.example.org", partner)
    sign_in(client, desks.clock, user)
    return client


def test_the_intake_user_asks_and_reads_the_answer_in_the_case(desks: Desks) -> None:
    ref = desks.file()
    case = desks.intake.get(f"/staff/reports/{ref}").text
    assert f"/staff/reports/{ref}/requests?partner={SCHOOL}" in case
    assert "partner=business-network" not in case  # its agreement permits no requests
    form = desks.intake.get(f"/staff/reports/{ref}/requests?partner={SCHOOL}").text
    assert 'name="basis" value="ferpa-health-safety" checked' in form
    assert PEOPLE in form and REPORT_CANARY not in form  # only the fields requests may carry
    assert 'name="field-description"' not in form
    assert desks.ask(ref).status_code == 200
    request_id = desks.request_id()
    stored = desks.database.rows(
        "SELECT partner_id, agreement_id, basis_id, fields, state, urgent FROM info_requests"
    )
    assert stored == [(SCHOOL, "HC-ISA-01", "ferpa-health-safety", "people", "open", 0)]
    waiting = desks.intake.get(f"/staff/reports/{ref}").text
    assert QUESTION in waiting and "Waiting for an answer" in waiting

    # The district's user: the request in the inbox, the question and the people involved,
    # nothing else of a report that was never shared with the district.
    inbox = desks.school.get("/staff/").text
    assert f'href="/staff/requests/{request_id}"' in inbox
    page = desks.school.get(f"/staff/requests/{request_id}").text
    assert QUESTION in page and REASON in page and PEOPLE in page
    assert REPORT_CANARY not in page and "Harbor High gym" not in page
    assert desks.school.get(f"/staff/reports/{ref}").status_code == 403
    answered = desks.answer(
        request_id, action="answer", answer=ANSWER, **{"category-incidents": "1"}
    )
    assert answered.status_code == 200 and ANSWER in answered.text

    case = desks.intake.get(f"/staff/reports/{ref}").text
    thread = case.split('id="requests"', 1)[1].split("Who receives it", 1)[0]
    assert ANSWER in thread and "Earlier incidents and discipline" in thread
    assert "Answered" in thread and "counselor@example.org" in thread


def test_each_step_is_on_the_audit_trail_without_content(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    request_id = desks.request_id()
    desks.answer(request_id, action="answer", answer=ANSWER, **{"category-incidents": "1"})
    sent = desks.audit("request_sent")
    assert sent == [
        (
            "intake@example.org",
            ref,
            f"request {request_id} to {SCHOOL} under HC-ISA-01 (ferpa-health-safety);"
            " fields: people; due in 72 h",
        )
    ]
    assert desks.audit("request_viewed")[0][:2] == ("counselor@example.org", ref)
    assert desks.audit("request_answered") == [
        ("counselor@example.org", ref, f"request {request_id}")
    ]
    trail = repr(desks.database.rows("SELECT * FROM staff_audit"))
    for secret in (QUESTION, REASON, ANSWER, PEOPLE, REPORT_CANARY):
        assert secret not in trail


def test_the_question_and_the_answer_are_not_readable_at_rest(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    desks.answer(desks.request_id(), action="answer", answer=ANSWER, **{"category-incidents": "1"})
    raw = desks.database.raw()
    for secret in (QUESTION, REASON, ANSWER):
        assert secret.encode() not in raw, secret
    sealed = desks.database.rows("SELECT question_age, answer_age FROM info_requests")[0]
    assert all(bytes(value).startswith(b"age-encryption.org/v1") for value in sealed)


def test_only_the_two_sides_and_the_archive_hold_a_key(desks: Desks, archive_identity: Any) -> None:
    import pyrage

    ref = desks.file()
    desks.ask(ref)
    sealed = bytes(desks.database.rows("SELECT question_age FROM info_requests")[0][0])
    assert QUESTION.encode() in bytes(pyrage.decrypt(sealed, [archive_identity]))
    stanzas = sealed.split(b"\n---", 1)[0].count(b"\n-> X25519 ")
    assert stanzas == 3  # the intake team, the district's users, the archive key


def test_a_partner_whose_agreement_permits_none_is_refused(desks: Desks) -> None:
    ref = desks.file()
    shown = desks.intake.get(f"/staff/reports/{ref}/requests?partner=business-network")
    assert shown.status_code == 422 and "permits no requests" in shown.text
    refused = desks.ask(ref, partner="business-network")
    assert refused.status_code == 422 and "permits no requests" in refused.text
    assert QUESTION in refused.text  # the text is kept
    assert desks.database.rows("SELECT count(*) FROM info_requests") == [(0,)]
    assert desks.audit("request_refused") == [
        ("intake@example.org", ref, "to business-network: requests_not_permitted")
    ]


def test_a_field_the_agreement_does_not_list_is_refused_and_nothing_sent(desks: Desks) -> None:
    ref = desks.file()
    refused = desks.ask(ref, **{"field-description": "1"})
    assert refused.status_code == 422
    assert "may not carry that part of the report" in refused.text and QUESTION in refused.text
    assert desks.database.rows("SELECT count(*) FROM info_requests") == [(0,)]
    assert desks.audit("request_refused")[0][2] == f"to {SCHOOL}: field_not_allowed"


def test_a_partner_nobody_enrolled_for_cannot_be_asked(desks: Desks) -> None:
    ref = desks.file()
    refused = desks.ask(ref, partner="harbor-behavioral-health", basis="hipaa-serious-threat")
    assert refused.status_code == 409 and "No one at this partner" in refused.text
    assert QUESTION in refused.text
    assert desks.database.rows("SELECT count(*) FROM info_requests") == [(0,)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"question": "  "}, "Write the question"),
        ({"reason": ""}, "Say what threat makes this request necessary"),
        ({"basis": "hipaa-serious-threat"}, "Choose the legal basis"),
        ({"due": "5"}, "Choose when you need the answer"),
        ({"question": "q" * 100_000}, "The question is too long"),
    ],
)
def test_an_incomplete_request_is_refused_with_the_text_kept(
    desks: Desks, changes: dict[str, str], message: str
) -> None:
    ref = desks.file()
    refused = desks.ask(ref, **changes)
    assert refused.status_code == 422 and message in refused.text
    assert (changes.get("question") or QUESTION) in refused.text
    assert desks.database.rows("SELECT count(*) FROM info_requests") == [(0,)]


def test_another_partner_cannot_open_the_request_nor_the_report(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    request_id = desks.request_id()
    eastwood = other_partner(desks, "partner:eastwood-schools")
    try:
        assert f"/staff/requests/{request_id}" not in eastwood.get("/staff/").text
        for path in (
            f"/staff/requests/{request_id}",
            "/staff/requests/999999",
            f"/staff/reports/{ref}",
        ):
            answer = eastwood.get(path)
            assert answer.status_code == 403, path
            assert QUESTION not in answer.text and PEOPLE not in answer.text
        posted = eastwood.post(
            f"/staff/requests/{request_id}",
            data={"csrf": csrf_of(eastwood.get("/staff/").text), "action": "nothing"},
        )
        assert posted.status_code == 403
    finally:
        eastwood.__exit__(None, None, None)
    forbidden = desks.database.rows(
        "SELECT actor, report_ref FROM staff_audit WHERE action = 'forbidden'"
    )
    assert ("user@partner:eastwood-schools.example.org", ref) in forbidden
    assert desks.database.rows("SELECT state FROM info_requests") == [("open",)]


def test_an_answer_after_the_request_was_withdrawn_is_refused(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    request_id = desks.request_id()
    page = desks.school.get(f"/staff/requests/{request_id}").text
    case = desks.intake.get(f"/staff/reports/{ref}").text
    withdrawn = desks.intake.post(
        f"/staff/requests/{request_id}", data={"csrf": csrf_of(case), "action": "withdraw"}
    )
    assert withdrawn.status_code == 200 and "Withdrawn" in withdrawn.text
    late = desks.school.post(
        f"/staff/requests/{request_id}",
        data={
            "csrf": csrf_of(page),
            "action": "answer",
            "answer": ANSWER,
            "category-incidents": "1",
        },
    )
    assert late.status_code == 409 and "withdrew this request" in late.text and ANSWER in late.text
    assert desks.database.rows("SELECT state, answer_age FROM info_requests") == [
        ("withdrawn", None)
    ]
    assert desks.audit("request_withdrawn") == [
        ("intake@example.org", ref, f"request {request_id}")
    ]


def test_an_answer_after_the_report_was_purged_is_refused(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    request_id = desks.request_id()
    page = desks.school.get(f"/staff/requests/{request_id}").text

    async def purge() -> list[str]:
        store = await desks.database.open_store()
        try:
            return await store.purge(datetime.now(UTC) + timedelta(days=400), 365)
        finally:
            await store.close()

    assert anyio.run(purge) == [ref]
    late = desks.school.post(
        f"/staff/requests/{request_id}",
        data={
            "csrf": csrf_of(page),
            "action": "answer",
            "answer": ANSWER,
            "category-incidents": "1",
        },
    )
    assert late.status_code == 410 and "has been deleted" in late.text and ANSWER in late.text
    assert desks.database.rows("SELECT state FROM info_requests") == [("open",)]
    assert f"/staff/requests/{request_id}" not in desks.school.get("/staff/").text


def test_a_100_kb_answer_is_refused_with_the_text_kept(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    long_answer = "x" * 100_000
    refused = desks.answer(
        desks.request_id(), action="answer", answer=long_answer, **{"category-incidents": "1"}
    )
    assert refused.status_code == 422 and "10,000 characters" in refused.text
    assert long_answer in refused.text
    assert desks.database.rows("SELECT state FROM info_requests") == [("open",)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "answer", "answer": ANSWER}, "Tick each kind of information"),
        ({"action": "answer", "category-attendance": "1"}, "Write your answer"),
        ({"action": "decline", "reason": " "}, "Say why you decline"),
        ({"action": "shrug"}, "That action is not known"),
    ],
)
def test_an_incomplete_answer_is_refused(
    desks: Desks, fields: dict[str, str], message: str
) -> None:
    ref = desks.file()
    desks.ask(ref)
    refused = desks.answer(desks.request_id(), **fields)
    assert refused.status_code in {400, 422} and message in refused.text
    assert desks.database.rows("SELECT state FROM info_requests") == [("open",)]


@pytest.mark.parametrize(
    ("fields", "state", "shown"),
    [
        ({"action": "nothing"}, "nothing", "Nothing relevant"),
        (
            {"action": "decline", "reason": "decline-canary not a health emergency"},
            "declined",
            "decline-canary",
        ),
    ],
)
def test_nothing_relevant_and_a_declined_request(
    desks: Desks, fields: dict[str, str], state: str, shown: str
) -> None:
    ref = desks.file()
    desks.ask(ref)
    request_id = desks.request_id()
    assert desks.answer(request_id, **fields).status_code == 200
    assert desks.database.rows("SELECT state FROM info_requests") == [(state,)]
    assert shown in desks.intake.get(f"/staff/reports/{ref}").text
    assert desks.audit(f"request_{state}")[0][2] == f"request {request_id}"
    again = desks.answer(request_id, action="nothing")
    assert again.status_code == 409  # closed once, by one answer


def test_html_and_template_syntax_are_shown_escaped(desks: Desks) -> None:
    ref = desks.file()
    hostile = "<script>alert(1)</script> {{ 7*7 }} {% if 1 %}x{% endif %}"
    desks.ask(ref, question=QUESTION + hostile)
    request_id = desks.request_id()
    page = desks.school.get(f"/staff/requests/{request_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "{{ 7*7 }}" in page and "{% if 1 %}x{% endif %}" in page
    desks.answer(
        request_id, action="answer", answer=ANSWER + hostile, **{"category-incidents": "1"}
    )
    case = desks.intake.get(f"/staff/reports/{ref}").text
    assert case.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2 and "<script>" not in case


def test_a_danger_now_report_makes_an_urgent_request(desks: Desks) -> None:
    ref = desks.file(danger_now="yes")
    form = desks.intake.get(f"/staff/reports/{ref}/requests?partner={SCHOOL}").text
    assert '<option value="1" selected>' in form and "marked urgent" in form
    desks.ask(ref, due="1")
    assert desks.database.rows("SELECT urgent FROM info_requests") == [(1,)]
    asked_at, due_at = desks.database.rows("SELECT asked_at, due_at FROM info_requests")[0]
    assert datetime.fromisoformat(due_at) - datetime.fromisoformat(asked_at) == timedelta(hours=1)
    inbox = desks.school.get("/staff/").text
    assert 'class="urgent"' in inbox.split("Shared reports")[0]
    assert desks.audit("request_sent")[0][2].endswith("due in 1 h; urgent")


def test_the_partner_pages_in_spanish(desks: Desks) -> None:
    ref = desks.file()
    desks.ask(ref)
    page = desks.school.get(
        f"/staff/requests/{desks.request_id()}", headers={"accept-language": "es"}
    ).text
    assert 'lang="es"' in page and "Solicitud de información" in page
    assert "FERPA: divulgación en una emergencia de salud o seguridad" in page


# -- the partner's record of requests and disclosures -----------------------------------


def _answered(desks: Desks) -> tuple[str, int]:
    ref = desks.file()
    desks.ask(ref, reason='=HYPERLINK("http://example.org") ' + REASON)
    request_id = desks.request_id()
    desks.answer(
        request_id,
        action="answer",
        answer=ANSWER,
        **{"category-incidents": "1", "category-supports": "1"},
    )
    return ref, request_id


def test_the_disclosure_record_as_csv(desks: Desks) -> None:
    ref, request_id = _answered(desks)
    month = datetime.now(UTC).strftime("%Y-%m")
    page = desks.school.get(f"/staff/disclosures?month={month}")
    assert page.status_code == 200 and ref in page.text and "Earlier threat" not in page.text
    exported = desks.school.get(f"/staff/disclosures?month={month}&format=csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("request,asked_at,asked_by,received_by,agreement,legal_basis")
    entry = lines[1]
    assert entry.startswith(f"{request_id},") and ref in entry and "intake@example.org" in entry
    assert "Earlier incidents and discipline; Safety plans and supports in place" in entry
    assert "ferpa-health-safety FERPA: disclosure in a health or safety emergency" in entry
    assert "Harbor County Threat Assessment Intake Team" in entry
    assert "'=HYPERLINK" in entry  # never a formula in a spreadsheet
    assert ANSWER not in entry  # the record lists what was disclosed, not the answer itself
    assert desks.audit("disclosures_exported") == [
        ("counselor@example.org", None, f"{SCHOOL} {month} csv")
    ]
    earlier = desks.school.get("/staff/disclosures?month=2020-01&format=csv").text
    assert earlier.splitlines()[1:] == []


def test_the_disclosure_record_as_pdf(desks: Desks, tmp_path: Any) -> None:
    pdftotext = require_tool("pdftotext", "reading the disclosure record's PDF (poppler-utils)")
    ref, request_id = _answered(desks)
    month = datetime.now(UTC).strftime("%Y-%m")
    exported = desks.school.get(f"/staff/disclosures?month={month}&format=pdf")
    assert exported.status_code == 200 and exported.content.startswith(b"%PDF-")
    (tmp_path / "record.pdf").write_bytes(exported.content)
    text = subprocess.run(
        [pdftotext, "-layout", str(tmp_path / "record.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(text.split())
    assert "Disclosure record" in flat and ref in flat and str(request_id) in flat
    assert "Earlier incidents and discipline" in flat and "intake@example.org" in flat
    assert "FERPA: disclosure in a health or safety emergency" in flat
    assert shutil.which("pdftotext") is not None


def test_the_disclosure_record_refuses_a_wrong_month_and_other_roles(desks: Desks) -> None:
    wrong = desks.school.get("/staff/disclosures?month=<b>june</b>")
    assert wrong.status_code == 422 and "&lt;b&gt;june&lt;/b&gt;" in wrong.text
    assert "<b>june</b>" not in wrong.text
    assert desks.intake.get("/staff/disclosures").status_code == 403


# -- program figures: requests per partner, median time to answer ----------------------


def _facts(partner: str, asked: str, state: str, answered: str | None) -> RequestFacts:
    return RequestFacts(partner, asked, state, answered)


def test_requests_per_partner_and_the_median_time_to_answer(keyed_demo: LoadedProfile) -> None:
    rows = [
        _facts(SCHOOL, f"2026-06-0{day}T09:00Z", "answered", f"2026-06-0{day}T{9 + day}:00Z")
        for day in range(1, 6)
    ]
    rows += [
        _facts(SCHOOL, "2026-06-09T09:00Z", "open", None),
        _facts(SCHOOL, "2026-06-09T10:00Z", "withdrawn", None),
        _facts("harbor-behavioral-health", "2026-06-02T09:00Z", "declined", "2026-06-02T09:30Z"),
        _facts(SCHOOL, "2026-05-31T23:59Z", "answered", "2026-06-01T00:10Z"),
    ]
    figures = tabulate_requests(rows, keyed_demo.profile, ["2026-05", "2026-06"])
    assert figures.partners == (SCHOOL, "eastwood-schools", "harbor-behavioral-health")
    june = figures.months["2026-06"]
    # 7 requests; the 5 answered took 1 to 5 hours: the lower median is 3 h
    assert june[SCHOOL] == PartnerMonth(7, 180)
    assert june["harbor-behavioral-health"] == PartnerMonth("<5", "<5")
    assert june["eastwood-schools"] == PartnerMonth(0, None)
    assert figures.months["2026-05"][SCHOOL] == PartnerMonth("<5", "<5")


def test_the_figures_count_the_requests_without_content(desks: Desks) -> None:
    ref, _ = _answered(desks)
    page = desks.intake.get("/staff/figures")
    assert page.status_code == 200 and "Requests for information to partners" in page.text
    row = page.text.split("Requests for information to partners", 1)[1]
    assert "Harbor Unified School District" in row and "fewer than 5" in row
    code = desks.clock.next_code(desks.staff["intake"].totp_secret)
    data = {"csrf": csrf_of(page.text), "format": "csv", "code": code}
    exported = desks.intake.post("/staff/figures/export", data=data).text
    month = datetime.now(UTC).strftime("%Y-%m")
    assert f"{month},requests,{SCHOOL},<5" in exported.splitlines()
    assert f"{month},median_minutes_to_answer,{SCHOOL},<5" in exported.splitlines()
    assert f"{month},requests,eastwood-schools,0" in exported.splitlines()
    for secret in (QUESTION, ANSWER, ref):
        assert secret not in exported


@pytest.mark.parametrize(("consent", "shared"), [(False, False), (True, True)])
def test_contact_details_go_with_a_request_only_as_the_agreement_and_consent_allow(
    keyed_demo: LoadedProfile, consent: bool, shared: bool
) -> None:
    from form_service.staff.requests import included_values
    from tests.form_service.samples import report

    profile = keyed_demo.profile
    partner = profile.partner(SCHOOL)  # its agreement sends contact details with consent only
    content = {"report_ref": "R-X", **report(consent_to_share_contact=consent).content()}
    values = included_values(content, partner, ("people", "contact"), "en", profile)
    assert values["people"] == "A student in 10th grade"
    assert ("contact" in values) is shared
    if shared:
        assert values["contact"] == "Ann Example 555-0199 ann@example.org"


def _pending(desks: Desks) -> dict[str, int]:
    """Who has a staff notice waiting, and whether it is urgent, by e-mail address."""
    found = desks.database.rows(
        "SELECT u.email, n.urgent FROM staff_notices n JOIN staff_users u ON u.id = n.user_id"
        " WHERE n.pending_since IS NOT NULL"
    )
    return {email: urgent for email, urgent in found}


@pytest.mark.parametrize(("danger_now", "urgent"), [("no", 0), ("yes", 1)])
def test_a_request_and_its_answer_queue_staff_notices(
    desks: Desks, danger_now: str, urgent: int
) -> None:
    ref = desks.file(danger_now=danger_now)
    desks.database.execute("DELETE FROM staff_notices")
    assert desks.ask(ref, due="1" if urgent else "72").status_code == 200
    assert _pending(desks) == {"counselor@example.org": urgent}
    desks.database.execute("DELETE FROM staff_notices")
    desks.answer(desks.request_id(), action="nothing")
    assert _pending(desks) == {"intake@example.org": 0}


def _pass_at(desks: Desks, moment: datetime) -> dict[str, int]:
    """The notices pass's look for overdue urgent requests at *moment*; who has news then."""
    desks.database.execute("DELETE FROM staff_notices")

    async def look() -> None:
        store = await desks.database.open_store()
        try:
            async with store.transaction() as tx:
                await notices.note_overdue_requests(tx, moment)
        finally:
            await store.close()

    anyio.run(look)
    return _pending(desks)


def test_an_urgent_request_past_its_due_time_is_escalated_until_answered(desks: Desks) -> None:
    ref = desks.file(danger_now="yes")
    desks.ask(ref, due="1")
    later = datetime.now(UTC) + timedelta(hours=2)
    assert _pass_at(desks, datetime.now(UTC)) == {}  # not due yet
    both = {"counselor@example.org": 0, "intake@example.org": 0}
    assert _pass_at(desks, later) == both
    assert _pass_at(desks, later + timedelta(minutes=30)) == both  # again, until answered
    desks.answer(desks.request_id(), action="nothing")
    assert _pass_at(desks, later) == {}
    # A request that is not urgent waits past its due time without escalation.
    desks.file()
    newest = desks.database.rows("SELECT report_ref FROM reports ORDER BY id DESC LIMIT 1")[0][0]
    desks.ask(newest, due="72")
    assert desks.database.rows("SELECT urgent FROM info_requests ORDER BY id") == [(1,), (0,)]
    assert _pass_at(desks, later + timedelta(days=4)) == {}

"""The anonymous conversation between the team and the person who reported (issue 16), on
both databases: the team asks and the tipster answers through the status page; the page's
single-use token; codes typed loosely; hostile and overlong text; a purged report; a
database that is down; no cookie; nothing readable at rest; a report stored before
conversations existed (with a code made the old way); partners; staff notices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import anyio
import pyrage
import pytest
from starlette.testclient import TestClient

from form_service import conversation
from form_service.conversation import MESSAGE_MAX_CHARS
from form_service.intake import prepare_report
from form_service.receipts import normalize_code, receipt_hash
from form_service.settings import Settings
from form_service.staff import commands, totp
from form_service.status_views import MESSAGES_PER_HOUR
from form_service.storage import StoreUnavailable, postgres, rows, sqlite
from form_service.storage import conversation as threads
from form_service.storage import statements as q
from form_service.storage.migrations import CONVERSATION, MIGRATIONS
from form_service.thread_sessions import IDLE_SECONDS, ThreadSessions
from form_service.times import minute_iso, minute_start_stamp
from outreach.loader import LoadedProfile
from tests.databases import Database
from tests.form_service.conftest import code_of, start_client, token_of
from tests.form_service.samples import VALID_FORM, report
from tests.form_service.staff.support import (
    CodeClock,
    Staff,
    csrf_of,
    enrol,
    quick_sign_in,  # noqa: F401 (autouse: small Argon2 costs, no sign-in delay)
    sign_in,
)

INTAKE = "intake@example.org"
SCHOOL = "harbor-schools"
SCHOOL_USER = "counselor@example.org"
QUESTION = "question-canary-5e1a Which bus does he take on Fridays?"
ANSWER = "answer-canary-9b7d The number 12, he gets off at the gym."
HOSTILE = (
    "<script>alert(1)</script> {{ 7*7 }} {% if 1 %}x{% endif %} \u202edraw\u202c zero\u200bwidth"
)
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


# --- the desk: a tipster's browser and the team's, on one database ---------------------


@dataclass
class Desk:
    settings: Settings
    database: Database
    tipster: TestClient
    staff: dict[str, TestClient]
    accounts: dict[str, Staff]
    clock: CodeClock

    @property
    def intake(self) -> TestClient:
        return self.staff[INTAKE]

    @property
    def service(self) -> Any:
        """The tipster's side of the service (its token store, its database handle)."""
        return self.tipster.app_state["service"]

    def file(self, **fields: str) -> tuple[str, str]:
        """A report sent through the form: (its reference, its receipt code)."""
        page = self.tipster.get("/report").text
        answer = self.tipster.post(
            "/report", data={"token": token_of(page), **VALID_FORM, **fields}
        )
        assert answer.status_code == 200, answer.text
        ref = self.database.rows("SELECT report_ref FROM reports ORDER BY id DESC")[0][0]
        return str(ref), code_of(answer.text)

    def look_up(self, code: str) -> Any:
        return self.tipster.post("/status", data={"code": code})

    def send(self, page: Any, text: str, action: str = "send") -> Any:
        """Post from a status page with its token: a message, or a look for new ones."""
        data = {"token": token_of(page.text), "message": text, "action": action}
        return self.tipster.post("/status", data=data)

    def write(self, ref: str, text: str, who: str = INTAKE) -> Any:
        """A staff user writes to the tipster (the csrf token from the inbox, so that the
        case page is not opened, which would mark the tipster's messages read)."""
        client = self.staff[who]
        csrf = csrf_of(client.get("/staff/").text)
        return client.post(
            f"/staff/reports/{ref}",
            data={"csrf": csrf, "action": "message", "message": text},
            follow_redirects=False,
        )

    def audit(self, action: str) -> list[tuple[Any, ...]]:
        return self.database.rows(
            "SELECT actor, report_ref FROM staff_audit WHERE action = ? ORDER BY id", action
        )

    def messages(self) -> int:
        return int(self.database.rows("SELECT count(*) FROM tipster_messages")[0][0])

    def flags(self, ref: str) -> tuple[int, int]:
        """(awaiting_tipster, tipster_unread) of a report."""
        found = self.database.rows(
            "SELECT awaiting_tipster, tipster_unread FROM reports WHERE report_ref = ?", ref
        )
        return int(found[0][0]), int(found[0][1])

    def user_id(self, email: str) -> str:
        return str(self.database.rows("SELECT id FROM staff_users WHERE email = ?", email)[0][0])


@contextmanager
def open_desk(
    settings: Settings, database: Database, clock: CodeClock, users: dict[str, str]
) -> Iterator[Desk]:
    """Enrol *users* (email: role), then a restart (it reads the team keys at once), each
    user signed in in a browser of their own."""
    accounts = {}
    with start_client(settings) as setup:
        for email, role in users.items():
            accounts[email] = enrol(setup, settings, clock, email, role)
    with ExitStack() as stack:
        tipster = stack.enter_context(start_client(settings))
        staff = {}
        for email, account in accounts.items():
            staff[email] = stack.enter_context(start_client(settings))
            sign_in(staff[email], clock, account)
        yield Desk(settings, database, tipster, staff, accounts, clock)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> CodeClock:
    made = CodeClock(time.time())
    monkeypatch.setattr(totp, "clock", made)
    return made


@pytest.fixture
def desk(
    database: Database, make_settings: Callable[..., Settings], clock: CodeClock
) -> Iterator[Desk]:
    settings = make_settings(database_url=database.url, report_client_burst=500)
    with open_desk(settings, database, clock, {INTAKE: "intake"}) as opened:
        yield opened


@pytest.fixture
def tipster_desk(database: Database, make_settings: Callable[..., Settings]) -> Iterator[Desk]:
    """The tipster's side alone (no staff user): for what concerns only the status page."""
    settings = make_settings(database_url=database.url, report_client_burst=500)
    with start_client(settings) as tipster:
        yield Desk(settings, database, tipster, {}, {}, CodeClock(time.time()))


# --- reading pages -----------------------------------------------------------------------


def tipster_messages(page: str) -> list[tuple[bool, str]]:
    """The status page's messages: (from the team, text as shown)."""
    found = re.findall(
        r'<article class="message( from-team)?">.*?<p class="user-text" dir="auto">(.*?)</p>',
        page,
        re.S,
    )
    return [(bool(team), html.unescape(text)) for team, text in found]


def staff_messages(page: str) -> list[tuple[bool, str]]:
    """A case page's conversation: (from the tipster, the markup of the text)."""
    found = re.findall(
        r'<article class="note message( from-tipster)?">.*?<p class="user-text"[^>]*>(.*?)</p>',
        page,
        re.S,
    )
    return [(bool(tipster), text) for tipster, text in found]


def kept(page: str) -> str:
    """The message kept, unsent, in the read-only box of an expired page."""
    match = re.search(
        r'<textarea id="f-kept" rows="6" dir="auto" readonly>(.*?)</textarea>', page, re.S
    )
    assert match, "the page keeps no message"
    return html.unescape(match.group(1))


def message_box(page: str) -> str:
    match = re.search(r'<textarea id="f-message" name="message"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "the page has no message box"
    return html.unescape(match.group(1))


def listed(client: TestClient, view: str) -> list[str]:
    page = client.get(f"/staff/?view={view}").text
    return re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', page)


# --- 1. the team asks, the tipster reads and answers -------------------------------------


def test_the_team_asks_and_the_tipster_reads_and_answers(desk: Desk) -> None:
    ref, code = desk.file()
    assert desk.flags(ref) == (0, 0) and listed(desk.intake, "awaiting") == []

    asked = desk.write(ref, QUESTION)
    assert asked.status_code == 303 and asked.headers["location"].endswith("#thread")
    assert desk.flags(ref) == (1, 0)
    assert listed(desk.intake, "awaiting") == [ref]

    page = desk.look_up(code)
    assert page.status_code == 200
    assert tipster_messages(page.text) == [(True, QUESTION)]
    assert "The team has written to you" in page.text

    answered = desk.send(page, ANSWER)
    assert answered.status_code == 200
    assert "Your message was sent to the team." in answered.text
    assert tipster_messages(answered.text) == [(True, QUESTION), (False, ANSWER)]
    assert message_box(answered.text) == ""
    assert desk.flags(ref) == (0, 1)  # no longer waiting for the tipster; unread for the team
    assert listed(desk.intake, "awaiting") == []

    # Listed as a new message until the case page is opened.
    assert listed(desk.intake, "messages") == [ref]
    assert listed(desk.intake, "messages") == [ref]
    case = desk.intake.get(f"/staff/reports/{ref}").text
    assert staff_messages(case) == [(False, html.escape(QUESTION)), (True, html.escape(ANSWER))]
    assert "The person who reported wrote" in case and f"{INTAKE} wrote to them" in case
    assert listed(desk.intake, "messages") == []
    assert desk.flags(ref) == (0, 0)

    # A second question reaches the open page without the code: "look for new messages".
    assert desk.write(ref, "second question").status_code == 303
    refreshed = desk.send(answered, "", action="refresh")
    assert refreshed.status_code == 200
    assert tipster_messages(refreshed.text)[-1] == (True, "second question")
    assert "Your message was sent" not in refreshed.text
    assert desk.messages() == 3

    assert desk.audit("tipster_message_sent") == [(INTAKE, ref), (INTAKE, ref)]
    assert (INTAKE, ref) in desk.audit("thread_read")
    assert desk.audit("tipster_messages_read") == [(INTAKE, ref)]
    trail = repr(desk.database.rows("SELECT * FROM staff_audit"))
    for secret in (QUESTION, ANSWER, "question-canary", "answer-canary", "second question"):
        assert secret not in trail


def test_a_draft_is_kept_when_the_tipster_looks_for_new_messages(desk: Desk) -> None:
    _, code = desk.file()
    page = desk.look_up(code)
    refreshed = desk.send(page, "a draft not sent yet", action="refresh")
    assert refreshed.status_code == 200 and "Your message was sent" not in refreshed.text
    assert message_box(refreshed.text) == "a draft not sent yet"
    assert desk.messages() == 0


def test_an_empty_message_is_refused(desk: Desk) -> None:
    _, code = desk.file()
    refused = desk.send(desk.look_up(code), "  \n ")
    assert refused.status_code == 422 and "Write a message before you send it." in refused.text
    assert desk.messages() == 0


def test_the_tipster_may_send_a_limited_number_of_messages_an_hour(tipster_desk: Desk) -> None:
    desk = tipster_desk
    _, code = desk.file()
    page = desk.look_up(code)
    for n in range(MESSAGES_PER_HOUR):
        page = desk.send(page, f"message {n}")
        assert page.status_code == 200, n
    refused = desk.send(page, "one too many")
    assert refused.status_code == 429
    assert "sent many messages in the last hour" in refused.text
    assert message_box(refused.text) == "one too many"
    assert desk.messages() == MESSAGES_PER_HOUR


# --- 2. the page's single-use token ------------------------------------------------------


def test_an_unknown_token_is_refused_and_the_message_kept(tipster_desk: Desk) -> None:
    desk = tipster_desk
    desk.file()
    data = {"token": "not-a-token", "message": "my kept message", "action": "send"}
    refused = desk.tipster.post("/status", data=data)
    assert refused.status_code == 410
    assert "This page has expired" in refused.text
    assert kept(refused.text) == "my kept message"
    assert desk.messages() == 0


def test_a_token_is_good_once(tipster_desk: Desk) -> None:
    desk = tipster_desk
    _, code = desk.file()
    page = desk.look_up(code)
    assert desk.send(page, "first").status_code == 200
    again = desk.send(page, "sent twice?")
    assert again.status_code == 410 and kept(again.text) == "sent twice?"
    assert desk.messages() == 1


def test_an_idle_token_expires(tipster_desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = tipster_desk
    now = [1_000.0]
    monkeypatch.setattr(desk.service, "threads", ThreadSessions(clock=lambda: now[0]))
    _, code = desk.file()

    page = desk.look_up(code)
    now[0] += IDLE_SECONDS - 1
    still = desk.send(page, "in time")
    assert still.status_code == 200 and "Your message was sent" in still.text

    now[0] += IDLE_SECONDS + 1
    late = desk.send(still, "too late")
    assert late.status_code == 410 and "This page has expired" in late.text
    assert kept(late.text) == "too late"
    assert desk.messages() == 1
    assert desk.look_up(code).status_code == 200  # the code opens it again


def test_token_posts_do_not_use_up_the_code_limit(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=database.url, status_client_limit=2)
    with start_client(settings) as tipster:
        desk = Desk(settings, database, tipster, {}, {}, CodeClock(time.time()))
        _, code = desk.file()
        page = desk.look_up(code)
        assert page.status_code == 200
        for _ in range(10):
            page = desk.send(page, "", action="refresh")
            assert page.status_code == 200
        page = desk.send(page, "a message after many looks")
        assert page.status_code == 200
        assert desk.look_up(code).status_code == 200
        assert desk.look_up(code).status_code == 429  # the limit itself still holds
        # ... and a page already open keeps working while code look-ups are refused.
        assert desk.send(page, "", action="refresh").status_code == 200


# --- 3. codes typed loosely; a form sent twice ------------------------------------------


def test_a_code_may_be_typed_in_lowercase_with_spaces_or_without_dashes(
    tipster_desk: Desk,
) -> None:
    desk = tipster_desk
    _, code = desk.file()
    for typed in (code.lower(), code.replace("-", " "), code.replace("-", ""), f"  {code}  "):
        answer = desk.look_up(typed)
        assert answer.status_code == 200, typed
        assert "<h2>Received</h2>" in answer.text
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert desk.look_up(wrong).status_code == 404


def test_a_form_sent_twice_shows_one_code_and_stores_one_report(tipster_desk: Desk) -> None:
    desk = tipster_desk
    token = token_of(desk.tipster.get("/report").text)
    data = {"token": token, **VALID_FORM}
    first = desk.tipster.post("/report", data=data)
    second = desk.tipster.post("/report", data=data)
    assert first.status_code == 200 and second.status_code == 200
    assert code_of(first.text) == code_of(second.text)
    assert desk.database.rows("SELECT count(*) FROM reports") == [(1,)]
    assert desk.look_up(code_of(second.text)).status_code == 200


# --- 4. hostile text ---------------------------------------------------------------------


def test_hostile_text_is_escaped_and_hidden_characters_shown_to_staff(desk: Desk) -> None:
    ref, code = desk.file()
    assert desk.write(ref, "team " + HOSTILE).status_code == 303
    sent = desk.send(desk.look_up(code), HOSTILE)
    assert sent.status_code == 200

    page = sent.text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{ 7*7 }}" in page and "{% if 1 %}x{% endif %}" in page
    assert tipster_messages(page) == [(True, "team " + HOSTILE), (False, HOSTILE)]

    case = desk.intake.get(f"/staff/reports/{ref}").text
    assert "<script>alert(1)</script>" not in case
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in case
    assert "{{ 7*7 }}" in case and "{% if 1 %}x{% endif %}" in case
    assert "\u202e" not in case and "\u200b" not in case and "\u202c" not in case
    shown = staff_messages(case)
    assert len(shown) == 2
    for _, text in shown:
        assert '<span class="hidden-char">[U+202E]</span>draw' in text
        assert '<span class="hidden-char">[U+202C]</span>' in text
        assert 'zero<span class="hidden-char">[U+200B]</span>width' in text


# --- 5. overlong messages and bodies -----------------------------------------------------


def test_a_message_over_the_limit_is_refused_with_its_text_kept(tipster_desk: Desk) -> None:
    desk = tipster_desk
    _, code = desk.file()
    too_long = "x" * (MESSAGE_MAX_CHARS + 1)
    refused = desk.send(desk.look_up(code), too_long)
    assert refused.status_code == 422
    assert "10,001 characters long" in refused.text and "10,000 characters" in refused.text
    assert message_box(refused.text) == too_long
    assert desk.messages() == 0
    # The page it answers with works: the message, shortened, goes.
    fits = desk.send(refused, "x" * MESSAGE_MAX_CHARS)
    assert fits.status_code == 200 and "Your message was sent" in fits.text
    assert desk.messages() == 1


def test_a_long_non_latin_body_is_read_and_one_over_the_cap_refused(tipster_desk: Desk) -> None:
    desk = tipster_desk
    _, code = desk.file()
    cap = desk.settings.max_body_bytes
    page = desk.look_up(code)

    # About 100 KB form-encoded: 11,200 characters of three UTF-8 bytes, nine bytes each.
    long_text = "語" * 11_200
    body = f"token={token_of(page.text)}&action=send&message=".encode()
    body += quote(long_text).encode()
    assert 99_000 < len(body) < cap
    read = desk.tipster.post("/status", content=body, headers=FORM_HEADERS)
    assert read.status_code == 422 and "11,200 characters long" in read.text
    assert message_box(read.text) == long_text

    # A body of exactly the cap is read; one byte more is refused unread.
    prefix = f"token={token_of(read.text)}&action=send&message=".encode()
    at_cap = prefix + b"y" * (cap - len(prefix))
    assert len(at_cap) == cap
    answer = desk.tipster.post("/status", content=at_cap, headers=FORM_HEADERS)
    assert answer.status_code == 422 and message_box(answer.text) == "y" * (cap - len(prefix))
    over = prefix + b"y" * (cap + 1 - len(prefix))
    assert desk.tipster.post("/status", content=over, headers=FORM_HEADERS).status_code == 413
    assert desk.messages() == 0


# --- 6. a purged report ------------------------------------------------------------------


def test_after_the_report_is_purged_a_message_is_refused_and_kept(desk: Desk) -> None:
    ref, code = desk.file()
    assert desk.write(ref, QUESTION).status_code == 303
    page = desk.look_up(code)
    assert page.status_code == 200 and desk.messages() == 1

    portal = desk.tipster.portal
    assert portal is not None
    later = datetime.now(UTC) + timedelta(days=400)
    assert portal.call(desk.service.store.purge, later, 365) == [ref]

    refused = desk.send(page, "my last words")
    assert refused.status_code == 410
    assert "This report was deleted" in refused.text
    assert kept(refused.text) == "my last words"
    assert desk.messages() == 0  # the thread went with the report
    assert desk.look_up(code).status_code == 404
    assert desk.write(ref, "anyone there?").status_code == 404


# --- 7. the database is down -------------------------------------------------------------


def test_when_the_database_is_down_the_message_is_kept_with_a_new_token(
    tipster_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = tipster_desk
    _, code = desk.file()
    page = desk.look_up(code)

    @asynccontextmanager
    async def unavailable() -> AsyncIterator[Any]:
        raise StoreUnavailable("the database is down (test)")
        yield  # pragma: no cover

    with monkeypatch.context() as down:
        down.setattr(desk.service.store, "transaction", unavailable)
        failed = desk.send(page, "please keep this")
    assert failed.status_code == 503
    assert "We could not save your message just now" in failed.text
    assert message_box(failed.text) == "please keep this"
    assert token_of(failed.text) != token_of(page.text)
    assert desk.messages() == 0

    retried = desk.send(failed, message_box(failed.text))
    assert retried.status_code == 200 and "Your message was sent" in retried.text
    assert tipster_messages(retried.text) == [(False, "please keep this")]
    assert desk.messages() == 1


# --- 8. no cookie ------------------------------------------------------------------------


def test_the_status_page_never_sets_a_cookie(tipster_desk: Desk) -> None:
    desk = tipster_desk
    _, code = desk.file()
    desk.tipster.cookies.clear()
    answers = [desk.tipster.get("/status"), desk.look_up("0000-0000-0000-0000-0000")]
    page = desk.look_up(code)
    answers.append(page)
    answers.append(sent := desk.send(page, "hello"))
    answers.append(refreshed := desk.send(sent, "", action="refresh"))
    answers.append(desk.send(refreshed, "x" * (MESSAGE_MAX_CHARS + 1)))
    answers.append(desk.send(sent, "used token"))
    answers.append(desk.tipster.get("/es/status"))
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200, 404, 200, 200, 200, 422, 410, 200]
    for answer in answers:
        assert "set-cookie" not in answer.headers, answer.request.url
    assert not desk.tipster.cookies


# --- 9. at rest --------------------------------------------------------------------------


def every_value(database: Database) -> Iterator[tuple[str, Any]]:
    """(table, value) for every value of every table of the database."""
    if database.is_postgres:
        tables = database.rows(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    else:
        tables = database.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert len(tables) > 5
    for (table,) in tables:
        for row in database.rows(f'SELECT * FROM "{table}"'):
            for value in row:
                yield str(table), value


def holds(value: Any, secret: str) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return secret.encode() in bytes(value)
    return secret in str(value)


def test_no_message_and_no_code_are_readable_at_rest(desk: Desk, archive_identity: Any) -> None:
    ref, code = desk.file()
    team_canary = "team-canary-40c2e7 where did you see him?"
    tipster_canary = "tipster-canary-d91f3a behind the gym"
    assert desk.write(ref, team_canary).status_code == 303
    assert desk.send(desk.look_up(code), tipster_canary).status_code == 200
    assert desk.intake.get(f"/staff/reports/{ref}").status_code == 200

    secrets_ = (
        team_canary,
        tipster_canary,
        "team-canary-40c2e7",
        "tipster-canary-d91f3a",
        code,
        normalize_code(code),
        code.lower(),
    )
    values = list(every_value(desk.database))
    assert any(table == "tipster_messages" for table, _ in values)
    for table, value in values:
        for secret in secrets_:
            assert not holds(value, secret), (table, secret)
    raw = desk.database.raw()
    for secret in secrets_:
        assert secret.encode() not in raw, secret

    # Each message is an age file, readable with the archive key (and not otherwise).
    bodies = [bytes(b) for (b,) in desk.database.rows("SELECT body_age FROM tipster_messages")]
    assert all(body.startswith(b"age-encryption.org/v1") for body in bodies)
    opened = {pyrage.decrypt(body, [archive_identity]).decode() for body in bodies}
    assert opened == {team_canary, tipster_canary}


# --- 10. a report stored before conversations, with a code made the old way ---------------

# How the code before random receipts made a code: an HMAC of the form token's id
# (git show 1bb18cd:form_service/receipts.py).
_CROCKFORD_DIGITS = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def old_receipt_code(secret: str, token_id: str) -> str:
    mac = hmac.new(secret.encode(), ("receipt:" + token_id).encode(), hashlib.sha256).digest()
    raw = base64.b32encode(mac[:13]).translate(_CROCKFORD_DIGITS)[:20].decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, 20, 4))


# How the code before the conversation inserted a report (schema v1, v2 adds defaults only).
OLD_REPORT_INSERT = (
    "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
    " content_age) VALUES (?, ?, ?, 'received', ?, ?)"
)


async def _write_old_report(database: Database, new: Any) -> None:
    store = await database.open_store()
    try:
        at = minute_iso(new.created_at)
        async with store.transaction() as tx:
            found = await tx.fetch(
                OLD_REPORT_INSERT + " RETURNING id",
                (new.report_ref, new.receipt_hash, new.token_id, at, new.content_age),
            )
            outbox, audit = rows.new_report_rows(
                new, int(found[0][0]), at, minute_start_stamp(new.created_at)
            )
            for values in outbox:
                await tx.run(q.OUTBOX_INSERT, values)
            for values in audit:
                await tx.run(q.AUDIT_INSERT, values)
    finally:
        await store.close()


def test_a_report_with_an_old_code_gets_its_conversation_after_the_migration(
    database: Database,
    make_settings: Callable[..., Settings],
    clock: CodeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(database_url=database.url)
    key = settings.secret_keys[0]
    token_id = secrets.token_hex(16)
    code = old_receipt_code(key, token_id)
    filed = report(description="old-report-canary-7c1d", danger_now=False)
    when = datetime.now(UTC) - timedelta(days=3)
    new, _ = prepare_report(filed, settings.profile.profile, token_id, key, when)
    old = replace(
        new,
        receipt_hash=receipt_hash(key, code),
        token_id=token_id,
        receipt_sealed=None,
        thread_recipient=None,
        thread_sealed=None,
    )
    before = MIGRATIONS[: MIGRATIONS.index(CONVERSATION)]
    with monkeypatch.context() as old_schema:
        old_schema.setattr(sqlite, "MIGRATIONS", before)
        old_schema.setattr(postgres, "MIGRATIONS", before)
        anyio.run(_write_old_report, database, old)
    assert database.rows("SELECT version FROM schema_migrations ORDER BY version") == [
        (m.version,) for m in before
    ]
    ref = old.report_ref

    with open_desk(settings, database, clock, {INTAKE: "intake"}) as desk:
        found = database.rows(
            "SELECT token_id, thread_recipient, thread_sealed FROM reports WHERE report_ref = ?",
            ref,
        )
        assert found == [("forgotten:" + ref, None, None)]

        # No thread yet: the team cannot write, and keeps its text.
        case = desk.intake.get(f"/staff/reports/{ref}").text
        assert "sent before messages existed" in case
        early = desk.write(ref, "too early")
        assert early.status_code == 409 and "sent before messages existed" in early.text
        assert re.search(r'id="message-kept"[^>]*readonly>too early</textarea>', early.text)
        assert desk.messages() == 0

        # The tipster's first check, with the code typed loosely, makes the thread.
        page = desk.look_up(code.lower().replace("-", " "))
        assert page.status_code == 200 and "<h2>Received</h2>" in page.text
        assert tipster_messages(page.text) == []
        token, recipient, sealed = database.rows(
            "SELECT token_id, thread_recipient, thread_sealed FROM reports WHERE report_ref = ?",
            ref,
        )[0]
        assert token == "forgotten:" + ref
        assert str(recipient).startswith("age1") and sealed is not None

        assert desk.write(ref, QUESTION).status_code == 303
        again = desk.look_up(code)
        assert tipster_messages(again.text) == [(True, QUESTION)]
        assert desk.send(again, ANSWER).status_code == 200
        case = desk.intake.get(f"/staff/reports/{ref}").text
        assert staff_messages(case) == [(False, html.escape(QUESTION)), (True, html.escape(ANSWER))]
        # The thread key was made once: a later check opens the same thread.
        assert database.rows("SELECT thread_recipient FROM reports WHERE report_ref = ?", ref) == [
            (recipient,)
        ]
        wrong = old_receipt_code(key, token_id + "x")
        assert desk.look_up(wrong).status_code == 404


# --- 11. partners ------------------------------------------------------------------------


def school_joins(loaded: LoadedProfile, joins: bool) -> LoadedProfile:
    """The profile with the school district's agreement letting its users join (or not)."""
    profile = loaded.profile
    partners = []
    for partner in profile.partners:
        if partner.id == SCHOOL:
            agreement = partner.agreement.model_copy(update={"tipster_conversation": joins})
            partner = partner.model_copy(update={"agreement": agreement})
        partners.append(partner)
    changed = profile.model_copy(update={"partners": partners})
    return LoadedProfile(profile=changed, folder=loaded.folder, path=loaded.path)


@pytest.fixture
def partner_desk(
    request: pytest.FixtureRequest,
    database: Database,
    make_settings: Callable[..., Settings],
    clock: CodeClock,
    keyed_demo: LoadedProfile,
) -> Iterator[Desk]:
    joins = bool(getattr(request, "param", False))
    settings = make_settings(
        database_url=database.url,
        report_client_burst=500,
        profile=school_joins(keyed_demo, joins),
    )
    users = {INTAKE: "intake", SCHOOL_USER: f"partner:{SCHOOL}"}
    with open_desk(settings, database, clock, users) as opened:
        yield opened


def stanzas(body: bytes) -> int:
    return body.split(b"\n---", 1)[0].count(b"\n-> X25519 ")


def test_a_partner_whose_agreement_does_not_allow_it_cannot_write(partner_desk: Desk) -> None:
    desk = partner_desk
    ref, code = desk.file()  # North Harbor, a school: shared with the district at once
    page = desk.staff[SCHOOL_USER].get(f"/staff/reports/{ref}")
    assert page.status_code == 200 and 'id="thread"' not in page.text
    refused = desk.write(ref, "from the district", who=SCHOOL_USER)
    assert refused.status_code == 403
    assert desk.messages() == 0
    assert (SCHOOL_USER, ref) in desk.audit("forbidden")
    # The tipster's own message is not sealed to the district.
    assert desk.send(desk.look_up(code), ANSWER).status_code == 200
    (body,) = desk.database.rows("SELECT body_age FROM tipster_messages")[0]
    assert stanzas(bytes(body)) == 3  # the archive key, the intake team, the thread key


@pytest.mark.parametrize("partner_desk", [True], indirect=True)
def test_a_partner_allowed_by_its_agreement_writes_only_on_its_reports(partner_desk: Desk) -> None:
    desk = partner_desk
    school = desk.staff[SCHOOL_USER]
    ref, code = desk.file()
    written = desk.write(ref, "district-canary Is he safe at home?", who=SCHOOL_USER)
    assert written.status_code == 303
    page = desk.look_up(code)
    assert tipster_messages(page.text) == [(True, "district-canary Is he safe at home?")]
    assert desk.send(page, ANSWER).status_code == 200
    bodies = [bytes(b) for (b,) in desk.database.rows("SELECT body_age FROM tipster_messages")]
    assert [stanzas(body) for body in bodies] == [4, 4]  # and the district's users
    shown = staff_messages(school.get(f"/staff/reports/{ref}").text)
    assert shown == [(False, "district-canary Is he safe at home?"), (True, html.escape(ANSWER))]
    assert (SCHOOL_USER, ref) in desk.audit("tipster_message_sent")
    assert (SCHOOL_USER, ref) in desk.audit("thread_read")

    # A report in Eastwood Valley goes to the other district: none of this one's business.
    other, other_code = desk.file(area="east")
    assert desk.send(desk.look_up(other_code), "eastwood-canary private").status_code == 200
    opened = school.get(f"/staff/reports/{other}")
    assert opened.status_code == 403 and "eastwood-canary" not in opened.text
    refused = desk.write(other, "not ours", who=SCHOOL_USER)
    assert refused.status_code == 403 and "eastwood-canary" not in refused.text
    assert (SCHOOL_USER, other) in desk.audit("forbidden")
    (body,) = desk.database.rows(
        "SELECT m.body_age FROM tipster_messages m JOIN reports r ON r.id = m.report_id"
        " WHERE r.report_ref = ?",
        other,
    )[0]
    assert stanzas(bytes(body)) == 3
    assert desk.messages() == 3


# --- 12. staff notices -------------------------------------------------------------------


def pending(desk: Desk) -> set[str]:
    """The addresses of the staff users a notice waits for."""
    found = desk.database.rows(
        "SELECT u.email FROM staff_notices n JOIN staff_users u ON u.id = n.user_id"
        " WHERE n.pending_since IS NOT NULL"
    )
    return {str(email) for (email,) in found}


def test_a_tipster_message_queues_a_notice_for_the_assigned_user_or_the_intake_team(
    database: Database, make_settings: Callable[..., Settings], clock: CodeClock
) -> None:
    settings = make_settings(database_url=database.url, report_client_burst=500)
    other = "second@example.org"
    users = {INTAKE: "intake", other: "intake", SCHOOL_USER: f"partner:{SCHOOL}"}
    with open_desk(settings, database, clock, users) as desk:
        ref, code = desk.file()
        page = desk.look_up(code)
        assert pending(desk) == set()
        page = desk.send(page, "to whoever reads this")
        assert page.status_code == 200
        assert pending(desk) == {INTAKE, other}  # no one assigned: every intake user

        desk.database.execute("DELETE FROM staff_notices")
        csrf = csrf_of(desk.intake.get("/staff/").text)
        assigned = desk.intake.post(
            f"/staff/reports/{ref}",
            data={"csrf": csrf, "action": "assign", "assignee": desk.user_id(other)},
            follow_redirects=False,
        )
        assert assigned.status_code == 303
        assert pending(desk) == set()
        page = desk.send(page, "to the one assigned")
        assert pending(desk) == {other}

        # The assigned user leaves: every active intake user is told instead.
        desk.database.execute("DELETE FROM staff_notices")
        commands.disable(settings, other)
        desk.send(page, "anyone?")
        assert pending(desk) == {INTAKE}
        notices = desk.database.rows("SELECT urgent FROM staff_notices")
        assert notices == [(0,)]


def test_two_first_look_ups_at_once_open_the_one_thread_that_was_stored(
    tipster_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report from before conversations gets its thread key at its tipster's first check;
    when another check made one first (the same code, twice at once), the page opens the
    stored key, not the one it made and could not store."""
    desk = tipster_desk
    ref, code = desk.file()
    desk.database.execute("UPDATE reports SET thread_recipient = NULL, thread_sealed = NULL")
    original = threads.set_thread
    winners = []

    async def raced(tx: Any, report_id: int, recipient: str, sealed: bytes) -> bool:
        first = conversation.new_thread(code, ref)  # the other check's, stored first
        winners.append(first.recipient)
        assert await original(tx, report_id, first.recipient, first.sealed)
        return await original(tx, report_id, recipient, sealed)

    monkeypatch.setattr(threads, "set_thread", raced)
    page = desk.look_up(code)
    assert page.status_code == 200
    stored = desk.database.rows("SELECT thread_recipient FROM reports")
    assert stored == [(winners[0],)]
    sent = desk.send(page, "can I read my own message?")
    assert sent.status_code == 200
    assert tipster_messages(sent.text) == [(False, "can I read my own message?")]


# --- after closing; when to check back; right to left ----------------------------------


def test_the_tipster_may_write_after_the_report_is_closed(desk: Desk) -> None:
    ref, code = desk.file()
    case = desk.intake.get(f"/staff/reports/{ref}")
    closed = desk.intake.post(
        f"/staff/reports/{ref}",
        data={"csrf": csrf_of(case.text), "action": "close", "outcome": "no_concern"},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    page = desk.look_up(code)
    assert "Closed" in page.text
    answer = desk.send(page, ANSWER)
    assert answer.status_code == 200 and desk.messages() == 1
    assert desk.flags(ref) == (0, 1)  # flagged for the team, closed or not


@pytest.mark.parametrize(("days", "said"), [(1, "after 1 day,"), (5, "after 5 days,")])
def test_the_receipt_and_status_pages_say_when_to_check_back_from_the_profile(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile, days: int, said: str
) -> None:
    agency = keyed_demo.profile.agency.model_copy(update={"response_days": days})
    profile = keyed_demo.profile.model_copy(update={"agency": agency})
    loaded = LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)
    with start_client(make_settings(profile=loaded)) as client:
        receipt = client.post(
            "/report", data={"token": token_of(client.get("/report").text), **VALID_FORM}
        )
        status = client.post("/status", data={"code": code_of(receipt.text)})
        spanish = client.post("/es/status", data={"code": code_of(receipt.text)})
    for page in (receipt.text, status.text):
        text = re.sub(r"\s+", " ", page)
        assert "check back " + said in text
        assert "Nobody can tell you when the team writes" in text
    plural = "día," if days == 1 else "días,"
    assert f"vuelva después de {days} {plural}" in re.sub(r"\s+", " ", spanish.text)


def test_the_conversation_reads_right_to_left_with_each_message_in_its_own_direction(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    profile = keyed_demo.profile.model_copy(update={"languages": ["en", "ar"]})
    loaded = LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)
    with start_client(make_settings(profile=loaded)) as client:
        receipt = client.post(
            "/ar/report", data={"token": token_of(client.get("/ar/report").text), **VALID_FORM}
        )
        page = client.post("/ar/status", data={"code": code_of(receipt.text)})
        arabic = "رأيته عند الحافلة رقم 12"
        sent = client.post(
            "/ar/status", data={"token": token_of(page.text), "message": arabic, "action": "send"}
        )
    assert sent.status_code == 200
    assert '<html lang="ar" dir="rtl">' in sent.text
    assert f'<p class="user-text" dir="auto">{arabic}</p>' in sent.text
    assert re.search(r'<textarea id="f-message"[^>]* dir="auto"', sent.text)

"""Enrolment, sign-in and sessions, tried the wrong ways as well as the right one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from form_service.staff import accounts, commands
from tests.databases import Database
from tests.form_service.conftest import rows, start_client
from tests.form_service.staff.support import (
    PASSWORD,
    CodeClock,
    csrf_of,
    enrol,
    field_value,
    sign_in,
)

REFUSED = "We could not sign you in"


@pytest.fixture
def db_settings(database: Database, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=database.url)


def _db_rows(database: Database, sql: str, *args: object) -> list[tuple[object, ...]]:
    return database.rows(sql, *args)


def test_enrol_then_sign_in_with_password_and_code(
    db_settings: Settings, code_clock: CodeClock, database: Database
) -> None:
    with start_client(db_settings) as client:
        staff = enrol(client, db_settings, code_clock, "ana@example.org")
        assert len(staff.recovery) == 10
        assert client.get("/staff/", follow_redirects=False).status_code == 303
        sign_in(client, code_clock, staff)
        inbox = client.get("/staff/")
        assert inbox.status_code == 200 and "<h1>Inbox</h1>" in inbox.text
    # Nothing that proves or opens the account is stored in the clear.
    raw = database.raw()
    assert PASSWORD.encode() not in raw
    assert staff.totp_secret.encode() not in raw
    assert all(code.replace("-", "").encode() not in raw for code in staff.recovery)
    actions = [r[0] for r in _db_rows(database, "SELECT action FROM staff_audit ORDER BY id")]
    assert actions == ["user_added", "enrolled", "signed_in"]


def test_the_session_cookie_is_host_only_http_only_and_strict(
    settings: Settings, code_clock: CodeClock
) -> None:
    with start_client(settings, base_url="https://prevent.harbor-county.example.org") as client:
        _, link = commands.add(settings, "ana@example.org", "intake")
        staff = enrol(client, settings, code_clock, "bo@example.org")
        answer = sign_in(client, code_clock, staff)
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-outreach-staff=")
        for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower()
        assert link.startswith("https://")


def test_public_pages_never_set_a_cookie_even_for_signed_in_staff(
    settings: Settings, code_clock: CodeClock
) -> None:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        sign_in(client, code_clock, staff)
        for path in ("/report", "/es/report", "/status", "/"):
            assert "set-cookie" not in client.get(path).headers, path


@pytest.mark.parametrize("email", ["ana@example.org", "nobody@example.org", "not an address"])
def test_every_failed_password_looks_and_takes_the_same(
    settings: Settings, code_clock: CodeClock, monkeypatch: pytest.MonkeyPatch, email: str
) -> None:
    with start_client(settings) as client:
        enrol(client, settings, code_clock, "ana@example.org")
        monkeypatch.setattr(accounts, "SIGN_IN_SECONDS", 0.6)
        started = time.monotonic()
        answer = client.post("/staff/sign-in", data={"email": email, "password": "wrong " * 3})
        took = time.monotonic() - started
    assert answer.status_code == 401
    assert REFUSED in answer.text and 'name="step"' not in answer.text
    assert took >= 0.6


def test_wrong_and_reused_codes_are_refused(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        first = client.post("/staff/sign-in", data={"email": staff.email, "password": PASSWORD})
        step = field_value(first.text, "step")
        wrong = client.post("/staff/sign-in/code", data={"step": step, "code": "000000"})
        assert wrong.status_code == 401 and REFUSED in wrong.text
        code = code_clock.next_code(staff.totp_secret)
        ok = client.post(
            "/staff/sign-in/code", data={"step": step, "code": code}, follow_redirects=False
        )
        assert ok.status_code == 303
        client.cookies.clear()
        again = client.post("/staff/sign-in", data={"email": staff.email, "password": PASSWORD})
        reused = client.post(
            "/staff/sign-in/code", data={"step": field_value(again.text, "step"), "code": code}
        )
        assert reused.status_code == 401
        # The step token itself is single use too.
        replay = client.post("/staff/sign-in/code", data={"step": step, "code": "123456"})
        assert replay.status_code == 401


def test_a_recovery_code_signs_in_once(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        sign_in(client, code_clock, staff, code=staff.recovery[0])
        client.cookies.clear()
        first = client.post("/staff/sign-in", data={"email": staff.email, "password": PASSWORD})
        again = client.post(
            "/staff/sign-in/code",
            data={"step": field_value(first.text, "step"), "code": staff.recovery[0]},
        )
        assert again.status_code == 401


def test_an_account_pauses_after_five_failures(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        for _ in range(accounts.ACCOUNT_FAILURES):
            client.post("/staff/sign-in", data={"email": staff.email, "password": "nope " * 3})
        right = client.post("/staff/sign-in", data={"email": staff.email, "password": PASSWORD})
        assert right.status_code == 401 and REFUSED in right.text


def test_the_service_pauses_sign_ins_after_a_burst_of_failures(
    settings: Settings, code_clock: CodeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from form_service.staff import sign_in_views

    monkeypatch.setattr(sign_in_views, "_FAILURES", accounts.FailureWindow(limit=3))
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        for n in range(3):
            client.post("/staff/sign-in", data={"email": f"x{n}@example.org", "password": "p" * 12})
        right = client.post("/staff/sign-in", data={"email": staff.email, "password": PASSWORD})
        assert right.status_code == 401


def test_an_enrolment_link_works_once(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as client:
        _, link = commands.add(settings, "ana@example.org", "intake")
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        page = client.get(path)
        secret = field_value(page.text, "totp_secret")
        data = {"password": PASSWORD, "again": PASSWORD, "totp_secret": secret}
        first = client.post(path, data={**data, "code": code_clock.next_code(secret)})
        assert first.status_code == 200
        second = client.post(path, data={**data, "code": code_clock.next_code(secret)})
        assert second.status_code == 404 and "expired or was already used" in second.text


def test_an_expired_enrolment_link_is_refused(settings: Settings) -> None:
    with start_client(settings) as client:
        _, link = commands.add(settings, "ana@example.org", "intake")
        with_sqlite = settings.data_dir / "reports.sqlite3"
        assert with_sqlite.exists()
        import sqlite3

        with sqlite3.connect(with_sqlite) as conn:
            conn.execute("UPDATE staff_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
        answer = client.get("/" + link.split("://", 1)[1].split("/", 1)[1])
        assert answer.status_code == 404


@pytest.mark.parametrize(
    ("password", "again", "message"),
    [
        ("short", "short", "at least 12 characters"),
        ("password123456", "password123456", "too common"),
        ("lantern orbit meadow 42", "lantern orbit meadow 43", "not the same"),
    ],
)
def test_enrolment_explains_a_bad_password(
    settings: Settings, code_clock: CodeClock, password: str, again: str, message: str
) -> None:
    with start_client(settings) as client:
        _, link = commands.add(settings, "ana@example.org", "intake")
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        secret = field_value(client.get(path).text, "totp_secret")
        answer = client.post(
            path,
            data={
                "password": password,
                "again": again,
                "totp_secret": secret,
                "code": code_clock.next_code(secret),
            },
        )
        assert answer.status_code == 422 and message in answer.text
        assert field_value(answer.text, "totp_secret") == secret  # the app need not rescan


def test_enrolment_needs_a_valid_code(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as client:
        _, link = commands.add(settings, "ana@example.org", "intake")
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        secret = field_value(client.get(path).text, "totp_secret")
        data = {"password": PASSWORD, "again": PASSWORD, "totp_secret": secret, "code": "000000"}
        assert client.post(path, data=data).status_code == 422
        assert rows(settings, "SELECT state FROM staff_users") == [("invited",)]


@pytest.fixture
def signed_in(settings: Settings, code_clock: CodeClock) -> Iterator[tuple[TestClient, str]]:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        sign_in(client, code_clock, staff)
        yield client, staff.email


def test_an_idle_session_ends(settings: Settings, signed_in: tuple[TestClient, str]) -> None:
    client, _ = signed_in
    import sqlite3

    with sqlite3.connect(settings.data_dir / "reports.sqlite3") as conn:
        conn.execute(
            "UPDATE staff_tokens SET last_seen_at = '2000-01-01T00:00:00.000000Z'"
            " WHERE kind = 'session'"
        )
    answer = client.get("/staff/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/staff/sign-in"


def test_a_session_ends_after_twelve_hours_whatever_its_use(
    settings: Settings, signed_in: tuple[TestClient, str]
) -> None:
    client, _ = signed_in
    import sqlite3

    with sqlite3.connect(settings.data_dir / "reports.sqlite3") as conn:
        conn.execute("UPDATE staff_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
    assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_sign_out_and_sign_out_everywhere(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings) as one, start_client(settings) as two:
        staff = enrol(one, settings, code_clock, "ana@example.org")
        sign_in(one, code_clock, staff)
        sign_in(two, code_clock, staff)
        kept = dict(one.cookies)
        page = one.get("/staff/")
        out = one.post("/staff/sign-out", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 200 and "signed out" in out.text
        one.cookies.update(kept)  # the old cookie, replayed, opens nothing
        assert one.get("/staff/", follow_redirects=False).status_code == 303
        assert two.get("/staff/").status_code == 200
        sign_in(one, code_clock, staff)
        page = one.get("/staff/")
        one.post("/staff/sign-out", data={"csrf": csrf_of(page.text), "everywhere": "1"})
        assert two.get("/staff/", follow_redirects=False).status_code == 303


def test_forged_and_fixated_session_ids_open_nothing(
    settings: Settings, code_clock: CodeClock
) -> None:
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        planted = accounts.new_secret()
        client.cookies.set("outreach-staff", planted)
        assert client.get("/staff/", follow_redirects=False).status_code == 303
        client.cookies.clear()
        client.cookies.set("outreach-staff", planted)
        answer = sign_in(client, code_clock, staff)
        issued = answer.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        assert issued != planted  # a new id at sign-in, whatever the browser brought
        for forged in ("x", "A" * 43, "../../etc", "", planted):
            client.cookies.clear()
            client.cookies.set("outreach-staff", forged)
            assert client.get("/staff/", follow_redirects=False).status_code == 303


def test_a_post_without_the_token_or_from_another_site_is_refused(
    settings: Settings, signed_in: tuple[TestClient, str]
) -> None:
    client, _ = signed_in
    csrf = csrf_of(client.get("/staff/").text)
    assert client.post("/staff/sign-out", data={"everywhere": "0"}).status_code == 403
    assert client.post("/staff/sign-out", data={"csrf": "forged"}).status_code == 403
    cross = client.post(
        "/staff/sign-out", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    fetch = client.post(
        "/staff/sign-out", data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch.status_code == 403
    # Still signed in: none of those did anything.
    assert client.get("/staff/").status_code == 200


def test_a_null_origin_counts_only_with_sec_fetch_site_same_origin(
    signed_in: tuple[TestClient, str],
) -> None:
    # Under Referrer-Policy: no-referrer a browser sends Origin: null from our own forms.
    client, _ = signed_in
    csrf = csrf_of(client.get("/staff/").text)
    null = {"Origin": "null"}
    assert client.post("/staff/sign-out", data={"csrf": csrf}, headers=null).status_code == 403
    cross = client.post(
        "/staff/sign-out", data={"csrf": csrf}, headers={**null, "Sec-Fetch-Site": "same-site"}
    )
    assert cross.status_code == 403
    own = client.post(
        "/staff/sign-out", data={"csrf": csrf}, headers={**null, "Sec-Fetch-Site": "same-origin"}
    )
    assert own.status_code == 200 and "You are signed out." in own.text


def test_a_disabled_account_loses_its_sessions(
    settings: Settings, signed_in: tuple[TestClient, str]
) -> None:
    client, email = signed_in
    commands.disable(settings, email)
    assert client.get("/staff/", follow_redirects=False).status_code == 303
    again = client.post("/staff/sign-in", data={"email": email, "password": PASSWORD})
    assert again.status_code == 401

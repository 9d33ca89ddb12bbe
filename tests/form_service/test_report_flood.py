"""Flood control on report submissions: per client, overall, honeypot and the surge flag."""

from __future__ import annotations

import json
import mailbox
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from form_service.ratelimit import ReportLimiter
from form_service.settings import SETTINGS, Settings
from outreach.loader import load_profile
from outreach.site.sitegen import build_site
from tests.conftest import REPO
from tests.live_server import outreach_serve

from .conftest import rows, start_client, submit, token_of
from .samples import VALID_FORM


def form() -> str:
    """A new form token's id: each report a limiter sees comes with a form of its own."""
    return secrets.token_hex(8)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_gives_a_burst_then_the_hourly_rate() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 1000, 1000, clock=clock)
    allowed = [limiter.admit("203.0.113.5", form()).allowed for _ in range(21)]
    assert allowed == [True] * 20 + [False]
    assert limiter.admit("198.51.100.7", form()).allowed  # another address is not affected
    clock.now += 60  # one more report a minute at 60 an hour
    assert limiter.admit("203.0.113.5", form()).allowed
    assert not limiter.admit("203.0.113.5", form()).allowed


def test_a_school_gets_thirty_reports_an_hour_from_one_address() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 120, 1000, clock=clock)
    accepted = 0
    for _ in range(40):  # 40 reports spread over an hour
        accepted += limiter.admit("203.0.113.5", form()).allowed
        clock.now += 90
    assert accepted == 40


def test_global_budget_per_minute() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 5, 1000, clock=clock)
    allowed = [limiter.admit(f"203.0.113.{n}", form()).allowed for n in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    clock.now += 60
    assert limiter.admit("203.0.113.99", form()).allowed


def test_surge_flag_covers_this_minute_and_the_next() -> None:
    clock = Clock()
    clock.now = 60 * 100.0
    limiter = ReportLimiter(1000, 60, 1000, 3, clock=clock)
    flags = [limiter.admit("203.0.113.5", form()).flood for _ in range(5)]
    assert flags == [False, False, False, True, True]
    clock.now += 60
    assert limiter.admit("198.51.100.7", form()).flood
    clock.now += 60
    assert not limiter.admit("198.51.100.7", form()).flood


def test_one_address_sending_like_a_script_is_flagged_from_its_sixteenth_form() -> None:
    clock = Clock()
    limiter = ReportLimiter(1000, 60, 1000, 1000, clock=clock, client_surge=15)
    flags = []
    for _ in range(18):  # a hundred a second
        flags.append(limiter.admit("203.0.113.5", form()).flood)
        clock.now += 0.01
    assert flags == [False] * 15 + [True] * 3
    assert not limiter.admit("198.51.100.7", form()).flood  # another address is not flagged
    clock.now += 20  # it has slowed down
    assert not limiter.admit("203.0.113.5", form()).flood
    quiet = ReportLimiter(1000, 60, 1000, 1000, clock=clock, client_surge=0)
    assert not any(quiet.admit("203.0.113.5", form()).flood for _ in range(20))


@pytest.mark.parametrize("spread_seconds", [30, 60, 300, 600])
def test_thirty_reports_from_a_class_behind_one_address_are_accepted_and_not_flagged(
    spread_seconds: int,
) -> None:
    """An assembly after an incident: thirty people behind one address, each with a form
    of their own, within ten minutes (14 in 15 s were flagged from the 4th on)."""
    clock = Clock()
    limiter = ReportLimiter(**_defaults(), clock=clock)
    admissions = []
    for n in range(30):
        admissions.append(limiter.admit("203.0.113.5", form()))
        clock.now += spread_seconds / 30 * (0.5 if n % 2 else 1.5)  # unevenly
    assert all(a.allowed for a in admissions)
    assert not any(a.flood for a in admissions)


def _defaults() -> dict[str, Any]:
    """The service's default report limits (form_service/settings.py)."""
    settings = {s.field: s.value({}) for s in SETTINGS if s.field.startswith("report_")}
    return {
        "burst": settings["report_client_burst"],
        "per_hour": settings["report_client_per_hour"],
        "global_per_minute": settings["report_global_per_minute"],
        "surge_per_minute": settings["report_surge_per_minute"],
        "client_surge": settings["report_client_surge"],
    }


def test_a_school_reporting_every_few_minutes_is_never_flagged() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 120, 1000, clock=clock)
    flags = []
    for _ in range(30):
        flags.append(limiter.admit("203.0.113.5", form()).flood)
        clock.now += 120
    assert not any(flags)


def test_over_the_client_limit_is_429_in_the_tipsters_language_with_their_text(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(report_client_burst=1, report_client_per_hour=0.0)
    typed = 'Él dijo <b>"mañana"</b> & más\nsegunda línea 🙂'
    with start_client(settings, client=("203.0.113.5", 5000)) as school:
        assert submit(school, "/es/report").status_code == 200
        page = submit(school, "/es/report", description=typed, when="el viernes")
        assert page.status_code == 429
        assert page.headers["retry-after"] == "60"
        assert "Se han enviado demasiados reportes" in page.text
        assert (
            "Él dijo &lt;b&gt;&#34;mañana&#34;&lt;/b&gt; &amp; más\nsegunda línea 🙂" in page.text
        )
        assert 'value="el viernes"' in page.text
    with start_client(settings, client=("198.51.100.7", 5000)) as other:
        assert submit(other).status_code == 200
    assert rows(settings, "SELECT count(*) FROM reports") == [(2,)]


def test_global_budget_refuses_everyone(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(report_global_per_minute=2)
    with start_client(settings, client=("203.0.113.5", 5000)) as client:
        codes = [submit(client).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert rows(settings, "SELECT count(*) FROM reports") == [(2,)]


def test_honeypot_is_hidden_and_a_filled_one_stores_nothing(
    client: Any, settings: Settings
) -> None:
    page = client.get("/report").text
    trap = re.search(r'<div class="trap" aria-hidden="true">.*?</div>', page, re.S)
    assert trap, "the form has no honeypot"
    assert 'name="website"' in trap.group(0)
    assert 'tabindex="-1"' in trap.group(0)
    assert 'autocomplete="off"' in trap.group(0)
    css = client.get("/report/static/form.css")
    if css.status_code == 200:
        assert ".trap {" in css.text
    answer = submit(client, website="http://spam.example")
    assert answer.status_code == 400
    assert VALID_FORM["description"] in answer.text  # a person who hit it keeps the text
    assert "spam.example" not in answer.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(0,)]
    assert submit(client, website="").status_code == 200


def test_reports_in_a_surge_are_flagged_for_partners(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(report_surge_per_minute=1)
    with start_client(settings, client=("203.0.113.5", 5000)) as client:
        assert submit(client).status_code == 200
        first = {ref for (ref,) in rows(settings, "SELECT id FROM reports")}
        assert submit(client).status_code == 200
    flags = flags_by_report(settings)
    assert len(flags) == 2
    for ref, seen in flags.items():
        assert seen == ({False} if ref in first else {True})


def flags_by_report(settings: Settings) -> dict[str, set[bool]]:
    flags: dict[str, set[bool]] = {}
    for ref, payload in rows(
        settings, "SELECT report_id, payload FROM outbox WHERE payload IS NOT NULL"
    ):
        flags.setdefault(ref, set()).add(json.loads(payload).get("flood_suspected", False))
    return flags


def test_requests_without_a_valid_token_spend_no_budget(
    make_settings: Callable[..., Settings],
) -> None:
    """140 POSTs of `a=b` once used the per-minute budget: a real report then got 429."""
    settings = make_settings(report_client_burst=1_000)
    form = {"content-type": "application/x-www-form-urlencoded"}
    with start_client(settings, client=("203.0.113.66", 5000)) as flooder:
        answers = {flooder.post("/report", content=b"a=b", headers=form).status_code}
        for _ in range(139):
            answers.add(flooder.post("/report", content=b"a=b", headers=form).status_code)
        forged = {"token": "x" * 40, **VALID_FORM}
        answers |= {flooder.post("/report", data=forged).status_code for _ in range(20)}
        assert answers == {400}
        assert submit(flooder).status_code == 200  # the budget was not spent


def send_with_three_errors(client: TestClient) -> int:
    token = token_of(client.get("/report").text)
    for _ in range(3):
        data = {**VALID_FORM, "token": token, "description": ""}
        assert client.post("/report", data=data).status_code == 422
    return client.post("/report", data={**VALID_FORM, "token": token}).status_code


def test_a_tipster_who_fixes_three_errors_is_not_flagged(
    make_settings: Callable[..., Settings],
) -> None:
    """An honest tipster with three validation errors was flagged as a flood."""
    settings = make_settings()
    with start_client(settings, client=("203.0.113.5", 5000)) as client:
        assert send_with_three_errors(client) == 200
    assert list(flags_by_report(settings).values()) == [{False}]


def test_a_form_sent_again_costs_one_report(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(report_client_burst=2, report_client_per_hour=0.0)
    with start_client(settings, client=("203.0.113.5", 5000)) as client:
        assert send_with_three_errors(client) == 200
        assert submit(client).status_code == 200  # the burst of two still had room for this
        assert submit(client).status_code == 429


def test_refused_requests_do_not_make_a_surge(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(report_surge_per_minute=3)
    form = {"content-type": "application/x-www-form-urlencoded"}
    with start_client(settings, client=("203.0.113.66", 5000)) as flooder:
        for _ in range(10):
            assert flooder.post("/report", content=b"a=b", headers=form).status_code == 400
        no_token = {k: v for k, v in VALID_FORM.items() if k != "token"}
        for _ in range(10):
            assert flooder.post("/report", data=no_token).status_code == 400
        assert submit(flooder).status_code == 200
    assert list(flags_by_report(settings).values()) == [{False}]


@pytest.mark.server
def test_real_server_answers_429_to_one_address_and_serves_another(
    demo_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_MIN_FILL_SECONDS", "0")
    monkeypatch.setenv("OUTREACH_REPORT_CLIENT_BURST", "2")
    monkeypatch.setenv("OUTREACH_REPORT_CLIENT_PER_HOUR", "1")
    with outreach_serve(demo_site, tmp_path / "data") as live:
        url = f"http://127.0.0.1:{live.port}/report"

        def send(client: httpx.Client) -> int:
            token = token_of(client.get(url).text)
            return client.post(url, data={"token": token, **VALID_FORM}).status_code

        flooder = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
        with flooder, other:
            assert [send(flooder) for _ in range(4)] == [200, 200, 429, 429]
            assert send(other) == 200


REGION = REPO / "tests" / "fixtures" / "region"


@pytest.fixture(params=["demo", "region"])
def agency(
    request: pytest.FixtureRequest, demo_site: Path, tmp_path: Path
) -> tuple[Path, list[str], dict[str, str], str]:
    """A built site, `serve` arguments, a form in its areas, and its intake team's folder:
    the demo, and the second fixture profile (service on its own address, every channel)."""
    if request.param == "demo":
        return demo_site, [], VALID_FORM, "intake-team"
    build_site(load_profile(REGION), tmp_path / "region-site")
    return tmp_path / "region-site", ["--profile", str(REGION)], REGION_FORM, "intake"


REGION_FORM = {**VALID_FORM, "area": "riverbend", "setting": "home"}


@pytest.mark.server
def test_thirty_people_behind_one_address_are_delivered_at_once_not_flagged(
    agency: tuple[Path, list[str], dict[str, str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A school assembly after an incident, against the real service and its default limits:
    thirty people behind one address each load a form and send it, one every half second
    (far faster than people type). Every report is accepted, and the intake team gets each
    as a message of its own at once, none marked as a possible flood nor held for a digest."""
    monkeypatch.setenv("OUTREACH_MIN_FILL_SECONDS", "0")
    monkeypatch.setenv("RIVERBEND_UNIVERSITY_WEBHOOK_SECRET", "whsec_" + "A" * 44)
    site, arguments, sample, intake = agency
    with outreach_serve(site, tmp_path / "data", *arguments) as live:
        url = f"http://127.0.0.1:{live.port}/report"
        school = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.20"))
        with school:
            forms = [token_of(school.get(url).text) for _ in range(30)]
            answers = []
            for token in forms:
                answers.append(school.post(url, data={"token": token, **sample}).status_code)
                time.sleep(0.5)
        assert answers == [200] * 30
        inbox = tmp_path / "data" / "maildir" / intake

        def messages() -> list[str]:
            if not (inbox / "new").is_dir():
                return []
            return [str(m["subject"]) for m in mailbox.Maildir(inbox, create=False)]

        deadline = time.monotonic() + 60
        while len(messages()) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
    subjects = messages()
    assert len(subjects) == 30, subjects
    assert not [s for s in subjects if "flood" in s.lower()], subjects

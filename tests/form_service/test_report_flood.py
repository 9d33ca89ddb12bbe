"""Flood control on report submissions: per client, overall, honeypot and the surge flag."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from form_service.ratelimit import ReportLimiter
from form_service.settings import Settings
from tests.live_server import outreach_serve

from .conftest import rows, start_client, submit, token_of
from .samples import VALID_FORM


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_gives_a_burst_then_the_hourly_rate() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 1000, 1000, clock=clock)
    allowed = [limiter.admit("203.0.113.5").allowed for _ in range(21)]
    assert allowed == [True] * 20 + [False]
    assert limiter.admit("198.51.100.7").allowed  # another address is not affected
    clock.now += 60  # one more report a minute at 60 an hour
    assert limiter.admit("203.0.113.5").allowed
    assert not limiter.admit("203.0.113.5").allowed


def test_a_school_gets_thirty_reports_an_hour_from_one_address() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 120, 1000, clock=clock)
    accepted = 0
    for _ in range(40):  # 40 reports spread over an hour
        accepted += limiter.admit("203.0.113.5").allowed
        clock.now += 90
    assert accepted == 40


def test_global_budget_per_minute() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 5, 1000, clock=clock)
    allowed = [limiter.admit(f"203.0.113.{n}").allowed for n in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    clock.now += 60
    assert limiter.admit("203.0.113.99").allowed


def test_surge_flag_covers_this_minute_and_the_next() -> None:
    clock = Clock()
    clock.now = 60 * 100.0
    limiter = ReportLimiter(1000, 60, 1000, 3, clock=clock)
    flags = [limiter.admit("203.0.113.5").flood for _ in range(5)]
    assert flags == [False, False, False, True, True]
    clock.now += 60
    assert limiter.admit("198.51.100.7").flood
    clock.now += 60
    assert not limiter.admit("198.51.100.7").flood


def test_one_address_sending_fast_is_flagged_from_its_fourth_report() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 1000, 1000, clock=clock)
    flags = [limiter.admit("203.0.113.5").flood for _ in range(5)]
    assert flags == [False, False, False, True, True]
    assert not limiter.admit("198.51.100.7").flood  # another address is not flagged
    clock.now += 5 * 60  # its hourly rate has given back the five reports
    assert not limiter.admit("203.0.113.5").flood
    quiet = ReportLimiter(20, 60, 1000, 1000, clock=clock, client_surge=0)
    assert not any(quiet.admit("203.0.113.5").flood for _ in range(5))


def test_a_school_reporting_every_few_minutes_is_never_flagged() -> None:
    clock = Clock()
    limiter = ReportLimiter(20, 60, 120, 1000, clock=clock)
    flags = []
    for _ in range(30):
        flags.append(limiter.admit("203.0.113.5").flood)
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
    flags = {}
    for ref, payload in rows(
        settings, "SELECT report_id, payload FROM outbox WHERE payload IS NOT NULL"
    ):
        flags.setdefault(ref, set()).add(json.loads(payload).get("flood_suspected", False))
    assert len(flags) == 2
    for ref, seen in flags.items():
        assert seen == ({False} if ref in first else {True})


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

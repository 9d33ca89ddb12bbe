"""Submitting a report: stored once, routed per the profile, receipt shown after the commit."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from form_service import report_views
from form_service.receipts import RESHOW_MINUTES
from form_service.settings import Settings
from outreach.profile import Concern, Setting
from outreach.routing import RoutingFacts, route_report

from .conftest import code_of, rows, start_client, submit, token_of
from .samples import VALID_FORM


def test_a_report_is_stored_routed_and_acknowledged(client: TestClient, settings: Settings) -> None:
    receipt = submit(client)
    assert receipt.status_code == 200
    code = code_of(receipt.text)
    assert "Your report was sent" in receipt.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]
    facts = RoutingFacts("north", Setting.school, Concern.harm_others, False)
    expected = route_report(facts, settings.profile.profile)
    stored = rows(settings, "SELECT partner_id, rule_id FROM outbox ORDER BY created_at, rowid")
    assert sorted(stored) == sorted((r.partner_id, r.rule_id) for r in expected)
    assert {"intake-team", "harbor-schools", "sheriff-tau"} == {p for p, _ in stored}
    assert code.replace("-", "") not in str(rows(settings, "SELECT * FROM reports"))


def test_receipt_page_makes_saving_obvious(client: TestClient) -> None:
    page = submit(client).text
    assert 'id="receipt-code" class="code"' in page and 'class="code-group"' in page
    assert "print this page" in page.lower() and "Ctrl+P" in page
    assert "I have saved my code" in page and 'href="/after-you-report/"' in page
    assert "What happens next" in page
    assert 'href="/status"' in page
    assert "Call 911 now" not in page


def test_danger_now_shows_call_911_on_the_receipt(client: TestClient, settings: Settings) -> None:
    page = submit(client, danger_now="yes")
    assert page.status_code == 200
    assert (
        '<h2 class="call-now-title"><a href="tel:911">Call <bdi dir="ltr">911</bdi> now</a></h2>'
        in page.text
    )
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]
    payloads = [json.loads(p) for (p,) in rows(settings, "SELECT payload FROM outbox")]
    assert all(p["urgent"] for p in payloads)
    assert "sheriff-tau" in {p["partner_id"] for p in payloads}


def test_spanish_receipt(client: TestClient) -> None:
    page = submit(client, path="/es/report", danger_now="yes")
    text = re.sub(r"<[^>]+>", "", page.text)
    assert "Su reporte fue enviado" in text and "Llame al 911 ahora" in text
    assert '<html lang="es"' in page.text


def test_double_submit_creates_one_report_and_shows_the_same_receipt(
    client: TestClient, settings: Settings
) -> None:
    token = token_of(client.get("/report").text)
    data = {"token": token, **VALID_FORM}
    first = client.post("/report", data=data)
    second = client.post("/report", data=data)
    assert first.status_code == second.status_code == 200
    assert code_of(first.text) == code_of(second.text)
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]
    assert rows(settings, "SELECT count(*) FROM outbox") == [(3,)]


def _already_sent(answer: Any, code: str) -> None:
    assert answer.status_code == 409
    assert "This report was already sent" in answer.text
    assert code not in answer.text and 'id="receipt-code"' not in answer.text


def test_a_used_form_with_other_content_does_not_show_the_code(
    client: TestClient, settings: Settings
) -> None:
    token = token_of(client.get("/report").text)
    data = {"token": token, **VALID_FORM}
    code = code_of(client.post("/report", data=data).text)
    _already_sent(client.post("/report", data={**data, "description": "edited, sent again"}), code)
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]


def test_a_used_form_later_than_ten_minutes_does_not_show_the_code(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_of(client.get("/report").text)
    data = {"token": token, **VALID_FORM}
    code = code_of(client.post("/report", data=data).text)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(minutes=RESHOW_MINUTES + 1)

    monkeypatch.setattr(report_views, "datetime", Later)
    _already_sent(client.post("/report", data=data), code)
    spanish = client.post("/es/report", data=data)
    assert spanish.status_code == 409 and "Este reporte ya se envió" in spanish.text
    assert code not in spanish.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]


def test_same_receipt_after_the_secret_rotates(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(secret_keys=("old-secret",))
    with start_client(settings) as client:
        token = token_of(client.get("/report").text)
        first = client.post("/report", data={"token": token, **VALID_FORM})
    rotated = make_settings(data_dir=settings.data_dir, secret_keys=("new-secret", "old-secret"))
    with start_client(rotated) as client:
        again = client.post("/report", data={"token": token, **VALID_FORM})
        status = client.post("/status", data={"code": code_of(first.text)})
    assert code_of(again.text) == code_of(first.text)
    assert status.status_code == 200


def test_each_form_gives_a_new_code(client: TestClient) -> None:
    assert code_of(submit(client).text) != code_of(submit(client).text)


def test_the_worker_is_woken_at_commit(client: TestClient) -> None:
    service = client.app_state["service"]
    assert not service.wakeup.is_set()
    submit(client)
    assert service.wakeup.is_set()


def test_reports_being_submitted_are_counted_for_the_worker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery worker in the same process gives way while the count is above zero."""
    seen: list[int] = []
    with start_client(settings, raise_server_exceptions=False) as client:
        service = client.app_state["service"]
        save = service.store.save_report

        async def counted(new: object, *files: object) -> object:
            seen.append(service.reports_in_flight)
            if len(seen) == 2:
                raise OSError("disk full")
            return await save(new, *files)

        monkeypatch.setattr(service.store, "save_report", counted)
        assert submit(client).status_code == 200
        assert service.reports_in_flight == 0
        assert submit(client).status_code == 500  # a failed submit is not counted for ever
        assert service.reports_in_flight == 0
        client.get("/report")
    assert seen == [1, 1]


def test_no_receipt_when_the_commit_fails(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise OSError("disk full")

    with start_client(settings, raise_server_exceptions=False) as failing:
        monkeypatch.setattr(failing.app_state["service"].store, "save_report", broken)
        answer = submit(failing)
    assert answer.status_code == 500
    assert 'id="receipt-code"' not in answer.text
    assert "may not have been sent" in answer.text


def test_too_fast_is_refused_with_the_text_kept(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(min_fill_seconds=3)
    with start_client(settings) as client:
        token = token_of(client.get("/report").text)
        fast = client.post("/report", data={"token": token, **VALID_FORM})
        assert fast.status_code == 400
        assert "Please take a moment to check your report" in fast.text
        assert VALID_FORM["description"] in fast.text
        assert rows(settings, "SELECT count(*) FROM reports") == [(0,)]
        time.sleep(3.1)
        slow = client.post("/report", data={"token": token, **VALID_FORM})
        assert slow.status_code == 200

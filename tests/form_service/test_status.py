"""The status page: code by POST only, same answer time right or wrong, rate-limited."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from form_service.ratelimit import LookupLimiter
from form_service.settings import Settings
from form_service.storage import conversation as threads

from .conftest import code_of, start_client, submit, token_of


def check(client: TestClient, code: str, path: str = "/status") -> tuple[int, str]:
    answer = client.post(path, data={"code": code})
    return answer.status_code, answer.text


def test_the_page_asks_for_the_code_by_post(client: TestClient) -> None:
    page = client.get("/status").text
    assert '<form method="post" action="/status"' in page
    assert 'name="code"' in page


def test_a_code_in_the_url_is_ignored(client: TestClient) -> None:
    code = code_of(submit(client).text)
    page = client.get(f"/status?code={code}").text
    assert "Received" not in page and code not in page


def test_status_follows_delivery_then_the_inbox(client: TestClient) -> None:
    receipt = submit(client)
    code = code_of(receipt.text)
    status, page = check(client, code)
    assert status == 200 and "<h2>Received</h2>" in page
    assert code not in page  # the code is not echoed back once found

    service = client.app_state["service"]
    store = service.store
    ref = client.portal.call(_only_ref, store)
    for row in client.portal.call(store.claim_due_deliveries, _far_future(), 10, 60):
        if row.is_intake:
            client.portal.call(store.mark_delivered, row.delivery_id)
    assert "<h2>Delivered to the team</h2>" in check(client, code)[1]
    client.portal.call(store.mark_reviewed, ref)
    assert "<h2>Being looked at</h2>" in check(client, code)[1]
    client.portal.call(_close, store, ref)
    page = check(client, code)[1]
    assert "<h2>Closed</h2>" in page and "referral" not in page.lower()


async def _close(store: Any, ref: str) -> None:
    from datetime import UTC, datetime

    from form_service.storage import staff as records

    async with store.transaction() as tx:
        await records.close(tx, ref, "referral", datetime.now(UTC))


async def _only_ref(store: object) -> str:
    conn = store._conn  # type: ignore[attr-defined]
    return str(conn.execute("SELECT report_ref FROM reports").fetchone()[0])


def _far_future():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=1)


def test_the_code_may_be_typed_loosely(client: TestClient) -> None:
    code = code_of(submit(client).text)
    loose = " " + code.lower().replace("-", " ").replace("1", "l").replace("0", "o") + " "
    assert check(client, loose)[0] == 200


def test_spanish_status(client: TestClient) -> None:
    code = code_of(submit(client, path="/es/report").text)
    status, page = check(client, code, "/es/status")
    assert status == 200 and "<h2>Recibido</h2>" in page and '<html lang="es"' in page


@pytest.mark.parametrize("wrong", ["", "0000-0000-0000-0000-0000", "not a code", "7K3M" * 100])
def test_wrong_codes(client: TestClient, wrong: str) -> None:
    submit(client)
    status, page = check(client, wrong)
    assert status == 404
    assert "We could not find a report with this code" in page
    assert 'aria-describedby="h-code e-code"' in page and 'href="#f-code"' in page


def test_right_and_wrong_codes_take_the_same_minimum_time(
    make_settings: Callable[..., Settings],
) -> None:
    with start_client(make_settings(status_min_seconds=0.3)) as client:
        code = code_of(submit(client).text)
        timings = {}
        for label, typed in (("right", code), ("wrong", "0000-0000-0000-0000-0000")):
            started = time.monotonic()
            check(client, typed)
            timings[label] = time.monotonic() - started
    assert timings["right"] >= 0.3 and timings["wrong"] >= 0.3
    assert abs(timings["right"] - timings["wrong"]) < 0.15


def test_a_lookup_is_made_for_every_key_right_or_wrong(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(secret_keys=("new", "old"))
    with start_client(settings) as client:
        code = code_of(submit(client).text)
        calls: list[str] = []
        original = threads.by_receipt

        async def counted(tx, receipt_hash: str):  # type: ignore[no-untyped-def]
            calls.append(receipt_hash)
            return await original(tx, receipt_hash)

        monkeypatch.setattr(threads, "by_receipt", counted)
        check(client, code)
        check(client, "0000-0000-0000-0000-0000")
    assert len(calls) == 4


def test_lookups_are_rate_limited_per_client(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(status_client_limit=3)
    with start_client(settings, client=("203.0.113.9", 4000)) as one:
        answers = [check(one, "nope")[0] for _ in range(4)]
    assert answers == [404, 404, 404, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    make_settings: Callable[..., Settings],
) -> None:
    proxy = ipaddress.ip_network("10.0.0.0/8")
    settings = make_settings(status_client_limit=2, trusted_proxies=(proxy,))
    with start_client(settings, client=("10.0.0.2", 4000)) as client:

        def lookup(address: str) -> int:
            headers = {"x-forwarded-for": address}
            return client.post("/status", data={"code": "x"}, headers=headers).status_code

        assert [lookup("203.0.113.9") for _ in range(3)] == [404, 404, 429]
        assert lookup("198.51.100.4") == 404
        # A forged hop in front of the proxy's own entry changes nothing.
        assert lookup("198.51.100.77, 203.0.113.9") == 429


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(status_client_limit=1)
    with start_client(settings, client=("203.0.113.9", 4000)) as client:
        client.post("/status", data={"code": "x"})
        forged = client.post("/status", data={"code": "x"}, headers={"x-forwarded-for": "1.2.3.4"})
    assert forged.status_code == 429


FORM = "application/x-www-form-urlencoded"


def test_empty_lookups_from_many_addresses_lock_no_one_out(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 empty POSTs from 30 addresses once spent a window shared by everyone: a real code
    then got 429 from any address for ten minutes."""
    monkeypatch.setattr(LookupLimiter, "record_failure", lambda self, client: None)  # fast
    proxy = ipaddress.ip_network("10.0.0.0/8")
    settings = make_settings(status_min_seconds=0.0, trusted_proxies=(proxy,))
    with start_client(settings, client=("10.0.0.2", 4000)) as client:
        code = code_of(submit(client).text)

        def post(address: str, body: str = "") -> int:
            headers = {"x-forwarded-for": address, "content-type": FORM}
            return client.post("/status", content=body, headers=headers).status_code

        limit = settings.status_client_limit
        for n in range(30):
            assert {post(f"203.0.113.{n}") for _ in range(limit)} == {404}
        assert post("203.0.113.0") == 429  # the per-client limit still holds
        assert post("198.51.100.4", f"code={code}") == 200
        assert post("198.51.100.5", "code=wrong") == 404


def test_conversation_token_posts_pass_no_code_limit(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(status_client_limit=1)
    with start_client(settings, client=("203.0.113.9", 4000)) as client:
        page = client.post("/status", data={"code": code_of(submit(client).text)})
        assert page.status_code == 200
        for _ in range(3):
            token = token_of(page.text)
            page = client.post("/status", data={"token": token, "action": "refresh"})
            assert page.status_code == 200
        assert client.post("/status", data={"code": "wrong"}).status_code == 429


def test_failures_slow_the_next_lookup(make_settings: Callable[..., Settings]) -> None:
    with start_client(make_settings()) as client:
        times = []
        for _ in range(4):
            started = time.monotonic()
            check(client, "wrong")
            times.append(time.monotonic() - started)
    assert times[0] < 0.2
    assert times[3] >= 0.45  # 0.25 s, then 0.5 s after the third failure


def test_the_status_form_reads_a_message_as_long_as_a_report_and_no_more(
    client: TestClient,
) -> None:
    """A message may be as long as a report's description in any script (within the
    service's body limit, form-encoded); a longer body is refused unread."""
    limit = client.app_state["service"].settings.max_body_bytes
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/status", content=b"x" * (limit - 10), headers=form).status_code == 404
    assert client.post("/status", content=b"x" * (limit + 1), headers=form).status_code == 413
    assert client.post("/status", json={"code": "x"}).status_code == 415

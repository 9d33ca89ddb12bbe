from __future__ import annotations

import asyncio
import contextlib
import json
import mailbox
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from form_service.delivery.alerts import ALERT_FOLDER
from form_service.delivery.retry import RetryPolicy
from form_service.delivery.worker import WorkerOptions
from form_service.logs import setup_logging
from form_service.report import ReporterContact
from outreach.loader import LoadedProfile
from outreach.profile import Concern, Profile, ReportField, Setting
from tests.conftest import free_port
from tests.databases import Database, only_postgres
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.reports import (
    FAST,
    make_worker,
    open_store,
    outbox,
    rows,
    run_until,
    submit,
    with_partner,
)
from tests.form_service.delivery.servers import (
    DroppingServer,
    HTTPReceiver,
    SMTPServer,
    ThrowawayCA,
)
from tests.form_service.samples import report

PEOPLE_CANARY = "CANARY-PEOPLE-5f1c"
CONTACT_CANARY = "CANARY-CONTACT-9b2e"


def _box(data_dir: Path, folder: str) -> list[str]:
    path = data_dir / "maildir" / folder
    if not path.exists():
        return []
    return [message.as_string() for message in mailbox.Maildir(path, create=False)]


def test_right_partners_get_exactly_their_fields(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    filed = report(
        area="east",
        setting=Setting.critical_infrastructure,
        concern=Concern.harm_others,
        people=PEOPLE_CANARY,
        contact=ReporterContact(name=CONTACT_CANARY),
        consent_to_share_contact=False,
    )

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, demo.profile, filed)
        await make_worker(store, demo.profile, data_dir).drain()
        await store.close()

    asyncio.run(scenario())
    folders = sorted(p.name for p in (data_dir / "maildir").iterdir())
    assert folders == ["harbor-utilities", "intake-team", "sheriff-tau"]
    (intake,) = _box(data_dir, "intake-team")
    (utilities,) = _box(data_dir, "harbor-utilities")
    (sheriff,) = _box(data_dir, "sheriff-tau")
    assert PEOPLE_CANARY in intake and CONTACT_CANARY in intake  # intake sees all it was given
    assert PEOPLE_CANARY in sheriff and CONTACT_CANARY not in sheriff  # no consent
    assert PEOPLE_CANARY not in utilities and CONTACT_CANARY not in utilities  # not agreed
    # A rule's id names what it matches: only a partner that shares the concern sees it.
    assert "Routing rule" not in utilities
    assert "Routing rule: " in sheriff
    assert "HC-ISA-07" in utilities
    state = outbox(database)
    assert {status for status, *_ in state.values()} == {"delivered"}
    assert all(payload is None for _, _, payload, _ in state.values())
    assert rows(database, "SELECT status FROM reports") == [("delivered",)]
    delivered = rows(database, "SELECT partner_id FROM audit_events WHERE event = 'delivered'")
    assert sorted(p for (p,) in delivered) == ["harbor-utilities", "intake-team", "sheriff-tau"]


@pytest.mark.smtp
def test_smtp_down_then_back_is_delivered_once(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    server: SMTPServer = smtp_server(starttls=True, start=False)
    profile = with_partner(demo.profile, "intake-team", **smtp_delivery(server))

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, profile)
        worker = make_worker(store, profile, data_dir, tls_context=test_ca.client_context())
        await worker.drain()
        status, attempts, payload, error = outbox(database)["intake-team"]
        assert status == "pending" and attempts >= 1
        assert payload is not None and f"SMTP 127.0.0.1:{server.port}" in error
        server.start()
        await run_until(worker, lambda: outbox(database)["intake-team"][0] == "delivered")
        await store.close()

    asyncio.run(scenario())
    assert len(server.messages) == 1 and server.messages[0].tls
    events = rows(
        database,
        "SELECT event, outcome FROM audit_events WHERE partner_id = 'intake-team' ORDER BY id",
    )
    assert events[0] == ("routed", None)
    assert ("delivery_attempt", "failed") in events and events[-1] == ("delivered", "delivered")


@pytest.mark.smtp
def test_server_that_drops_the_connection_is_retried(
    demo: LoadedProfile,
    data_dir: Path,
    dropping_server: DroppingServer,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    flaky = with_partner(demo.profile, "intake-team", **smtp_delivery(dropping_server))  # type: ignore[arg-type]

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, flaky)
        await make_worker(store, flaky, data_dir, tls_context=test_ca.client_context()).drain()
        assert outbox(database)["intake-team"][0] == "pending"
        dropping_server.stop()
        good: SMTPServer = smtp_server(starttls=True, port=dropping_server.port)
        worker = make_worker(store, flaky, data_dir, tls_context=test_ca.client_context())
        await run_until(worker, lambda: len(good.messages) == 1)
        await store.close()

    asyncio.run(scenario())
    assert dropping_server.connections >= 1
    status, attempts, *_ = outbox(database)["intake-team"]
    assert status == "delivered" and attempts == dropping_server.connections + 1


def test_webhook_500_then_200(
    demo: LoadedProfile,
    data_dir: Path,
    http_receiver: HTTPReceiver,
    database: Database,
) -> None:
    hook = {"url": http_receiver.url, "secret_env": "HOOK_SECRET"}
    profile = with_partner(demo.profile, "intake-team", channel="webhook", webhook=hook)
    http_receiver.statuses = [500]

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, profile)
        worker = make_worker(store, profile, data_dir, environ={"HOOK_SECRET": "s3cret"})
        await run_until(worker, lambda: outbox(database)["intake-team"][0] == "delivered")
        await store.close()

    asyncio.run(scenario())
    first, second = http_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert outbox(database)["intake-team"][1:] == (
        2,
        None,
        f"webhook {http_receiver.url[:22]}: HTTP 500",
    )


def test_two_workers_deliver_each_row_once(
    demo: LoadedProfile,
    data_dir: Path,
    http_receiver: HTTPReceiver,
    database: Database,
) -> None:
    hook = {"url": http_receiver.url, "secret_env": "HOOK_SECRET"}
    profile = with_partner(demo.profile, "intake-team", channel="webhook", webhook=hook)
    http_receiver.delay = 0.02

    async def scenario() -> None:
        store_a, store_b = await open_store(database), await open_store(database)
        for _ in range(40):
            await submit(store_a, profile, report(setting=Setting.online))
        workers = [
            make_worker(store, profile, data_dir, environ={"HOOK_SECRET": "s"})
            for store in (store_a, store_b)
        ]
        counts = await asyncio.gather(*(worker.drain() for worker in workers))
        assert all(count > 0 for count in counts), counts  # both really took part
        await store_a.close()
        await store_b.close()

    asyncio.run(scenario())
    ids = Counter(request.headers["webhook-id"] for request in http_receiver.requests)
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert rows(database, "SELECT count(*) FROM outbox WHERE status != 'delivered'") == [(0,)]


def _without_danger_now(profile: Profile, partner_id: str) -> Profile:
    chosen = profile.partner(partner_id)
    fields = [f for f in chosen.agreement.fields if f is not ReportField.danger_now]
    narrow = chosen.model_copy(
        update={"agreement": chosen.agreement.model_copy(update={"fields": fields})}
    )
    partners = [narrow if p.id == partner_id else p for p in profile.partners]
    return profile.model_copy(update={"partners": partners})


@pytest.mark.smtp
def test_a_send_slower_than_the_lease_is_not_sent_twice(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    """The relay takes 4 s to accept a message, the lease is 1.5 s: the sending worker
    keeps renewing it, so a second worker polling all the while never takes the row."""
    server: SMTPServer = smtp_server(starttls=True)
    server.delay = 4.0
    profile = with_partner(demo.profile, "intake-team", **smtp_delivery(server))
    options = replace(FAST, lease_seconds=1.5)

    async def scenario() -> None:
        stores = [await open_store(database), await open_store(database)]
        await submit(stores[0], profile)
        tls = test_ca.client_context()
        sender, rival = (
            make_worker(store, profile, data_dir, tls_context=tls, timeout=30, options=options)
            for store in stores
        )
        sending = asyncio.create_task(sender.run())
        await _until(lambda: server.begun == 1, 20)
        # Only now: the rival finds the row claimed, and polls while its send goes on.
        polling = asyncio.create_task(rival.run())
        await _until(lambda: outbox(database)["intake-team"][0] == "delivered", 30)
        for task in (sending, polling):
            task.cancel()
        await asyncio.gather(sending, polling, return_exceptions=True)
        for store in stores:
            await store.close()

    asyncio.run(scenario())
    assert server.begun == 1 and len(server.messages) == 1
    assert outbox(database)["intake-team"][:2] == ("delivered", 1)  # one claim, one attempt


async def _until(condition: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.smtp
def test_starttls_refused_is_never_plaintext_and_is_alerted(
    demo: LoadedProfile,
    data_dir: Path,
    smtp_server: Any,
    test_ca: ThrowawayCA,
    database: Database,
) -> None:
    server: SMTPServer = smtp_server(starttls=False)
    profile = _without_danger_now(
        with_partner(demo.profile, "sheriff-tau", **smtp_delivery(server)), "sheriff-tau"
    )
    options = WorkerOptions(
        poll_seconds=0.05, retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=3)
    )

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, profile)
        worker = make_worker(
            store,
            profile,
            data_dir,
            options=options,
            tls_context=test_ca.client_context(),
        )
        await run_until(worker, lambda: outbox(database)["sheriff-tau"][0] == "dead")
        await store.close()

    asyncio.run(scenario())
    assert server.messages == []
    _, attempts, payload, error = outbox(database)["sheriff-tau"]
    assert attempts == 3 and "does not offer STARTTLS" in error
    assert payload is not None  # kept (until retention) so the row can be sent once fixed
    (alert,) = _box(data_dir, ALERT_FOLDER)
    # The operator's alert tells the report's urgency, which the sheriff's copy left out.
    assert "Subject: Someone may be in danger now: report R-" in alert
    assert "was not delivered to sheriff-tau" in alert
    assert "knife" not in alert and "Ann Example" not in alert
    assert outbox(database)["intake-team"][0] == "delivered"  # the others were not held up
    dead = rows(database, "SELECT partner_id, outcome FROM audit_events WHERE event = 'dead'")
    assert dead == [("sheriff-tau", "gave up")]
    failed = rows(database, "SELECT count(*) FROM audit_events WHERE event = 'delivery_attempt'")
    assert failed == [(3,)]


def test_commit_wakes_the_worker_at_once(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    slow_poll = WorkerOptions(poll_seconds=60)

    async def scenario() -> float:
        store = await open_store(database)
        wakeup = asyncio.Event()
        worker = make_worker(store, demo.profile, data_dir, options=slow_poll, wakeup=wakeup)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)  # the worker has drained nothing and sleeps on its event
        await submit(store, demo.profile)
        started = time.monotonic()
        wakeup.set()
        while rows(database, "SELECT status FROM reports") != [("delivered",)]:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2.0


@only_postgres
def test_a_commit_elsewhere_wakes_the_worker_by_notify(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    """No shared event and no polling: only the NOTIFY of the other store's commit."""
    slow_poll = WorkerOptions(poll_seconds=60)

    async def scenario() -> float:
        worker_store, service_store = await open_store(database), await open_store(database)
        worker = make_worker(worker_store, demo.profile, data_dir, options=slow_poll)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)  # listening, drained nothing, asleep for a minute
        started = time.monotonic()
        await submit(service_store, demo.profile)
        async with asyncio.timeout(10):
            while rows(database, "SELECT status FROM reports") != [("delivered",)]:
                assert not task.done()
                await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker_store.close()
        await service_store.close()
        return elapsed

    assert asyncio.run(scenario()) < 2.0


def test_a_stop_swallowed_by_a_library_still_stops_the_worker(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    """Python 3.11's wait_for (under psycopg_pool's wait for a connection) can return a
    result and drop the cancel that arrived with it; the worker must stop all the same."""
    slow_poll = WorkerOptions(poll_seconds=60)

    async def scenario() -> bool:
        store = await open_store(database)
        claim = store.claim_due_deliveries
        claiming = asyncio.Event()

        async def claim_that_swallows_a_cancel(*args: Any) -> Any:
            claiming.set()
            # What the library does: the cancel is lost and the call returns.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)
            return await claim(*args)

        store.claim_due_deliveries = claim_that_swallows_a_cancel  # type: ignore[method-assign]
        worker = make_worker(store, demo.profile, data_dir, options=slow_poll)
        task = asyncio.create_task(worker.run())
        await claiming.wait()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:  # leave no task behind for the loop's shutdown to wait on forever
            store.claim_due_deliveries = claim  # type: ignore[method-assign]
        await store.close()
        return bool(done) and task.cancelled()

    assert asyncio.run(scenario())


def test_retry_policy_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=900, max_attempts=12)
    for attempts, bound in [(1, 2), (2, 4), (5, 32), (10, 900), (500, 900)]:
        delays = [policy.delay(attempts) for _ in range(300)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8 and min(delays) < bound * 0.2  # spread, not fixed
    assert not policy.gives_up(11) and policy.gives_up(12)


def test_unreachable_partner_does_not_hold_up_the_others(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    hook = {"url": f"http://127.0.0.1:{free_port()}/hook", "secret_env": "HOOK_SECRET"}
    profile = with_partner(demo.profile, "sheriff-tau", channel="webhook", webhook=hook)

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, profile)
        worker = make_worker(store, profile, data_dir, environ={"HOOK_SECRET": "s"})
        await worker.drain()
        await store.close()

    asyncio.run(scenario())
    state = outbox(database)
    assert state["sheriff-tau"][0] == "pending" and "ConnectError" in state["sheriff-tau"][3]
    assert state["intake-team"][0] == "delivered" and state["harbor-schools"][0] == "delivered"
    assert FAST.retry.max_attempts > 1


def test_partner_back_gets_its_backlog_at_once(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver, database: Database
) -> None:
    hook = {"url": http_receiver.url, "secret_env": "HOOK_SECRET"}
    profile = with_partner(demo.profile, "intake-team", channel="webhook", webhook=hook)
    # Backoff of at least a minute: only the pull-forward can deliver within the test.
    slow = WorkerOptions(
        poll_seconds=0.05, retry=RetryPolicy(base_seconds=600, cap_seconds=600, max_attempts=5)
    )
    slow.retry.rng.seed(7)
    http_receiver.statuses = [503, 503, 503]

    async def scenario() -> None:
        store = await open_store(database)
        worker = make_worker(store, profile, data_dir, options=slow, environ={"HOOK_SECRET": "s"})
        for _ in range(3):
            await submit(store, profile, report(setting=Setting.online))
        await worker.drain()
        waiting = rows(database, "SELECT count(*) FROM outbox WHERE status = 'pending'")
        assert waiting == [(3,)]
        await submit(store, profile, report(setting=Setting.online))  # the endpoint is back
        await run_until(
            worker,
            lambda: (
                rows(database, "SELECT count(*) FROM outbox WHERE status != 'delivered'") == [(0,)]
            ),
            timeout=10,
        )
        await store.close()

    asyncio.run(scenario())
    assert len({r.headers["webhook-id"] for r in http_receiver.requests}) == 4


def test_deliveries_are_logged_as_a_count_not_a_line_each(
    demo: LoadedProfile, data_dir: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info")

    async def scenario() -> None:
        store = await open_store(database)
        for _ in range(2):
            await submit(store, demo.profile, report())
        worker = make_worker(store, demo.profile, data_dir)
        pending = "SELECT count(*) FROM outbox WHERE status != 'delivered'"
        await run_until(worker, lambda: rows(database, pending) == [(0,)])
        await store.close()

    capsys.readouterr()
    asyncio.run(scenario())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    events = [line["event"] for line in lines]
    assert "delivered" not in events
    # One line per minute (two if the run spans a minute's end), one message per row.
    counts = [line["messages"] for line in lines if line["event"] == "messages_delivered"]
    assert 1 <= len(counts) <= 2
    assert sum(counts) == len(rows(database, "SELECT id FROM outbox"))
    assert all("report_ref" not in line and "R-" not in json.dumps(line) for line in lines)


@pytest.mark.parametrize("busy", [True, False])
def test_a_worker_sharing_the_form_s_process_gives_way_while_reports_come_in(
    demo: LoadedProfile, data_dir: Path, database: Database, busy: bool
) -> None:
    running: list[int] = []
    most = 0

    async def scenario() -> None:
        store = await open_store(database)
        for _ in range(4):
            await submit(store, demo.profile, report())
        worker = make_worker(store, demo.profile, data_dir, busy=lambda: busy)
        send = worker.attempt

        async def counted(row: Any) -> None:
            nonlocal most
            running.append(1)
            most = max(most, len(running))
            await asyncio.sleep(0.02)
            running.pop()
            await send(row)

        worker.attempt = counted  # type: ignore[method-assign]
        await worker.drain()
        await store.close()

    asyncio.run(scenario())
    assert all(status == "delivered" for status, *_ in outbox(database).values())
    assert most == 1 if busy else most > 1

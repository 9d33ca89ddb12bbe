"""Escalation of danger-now reports nobody acknowledges, on both databases, with a fake
clock: each notice to the next contact in turn, until someone acknowledges; one notice per
contact per pass; a fixed text that holds nothing of any report; each step sent once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.webhook import sign
from form_service.delivery.worker import DeliveryWorker, WorkerOptions
from form_service.settings import Settings
from form_service.staff.escalation import escalate
from form_service.storage import NewReport, Store
from form_service.storage import staff as records
from outreach.loader import LoadedProfile
from outreach.profile import DeliveryConfig, Escalation, Profile
from tests.conftest import free_port
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.servers import HTTPReceiver, SMTPServer, make_ca

T0 = datetime(2026, 3, 4, 5, 6, 30, tzinfo=UTC)
FIRST_DUE = datetime(2026, 3, 4, 5, 17, tzinfo=UTC)
"""The report's minute (05:06) lies wholly more than 10 minutes back from here on."""
CANARY = "canary-escalation-5e1c a ladder by the east gate"
INBOX = "https://prevent.harbor-county.example.org/staff/"
NOTICE = "A report marked as danger now has not been acknowledged."


def maildir_contact(folder: str, **extra: Any) -> DeliveryConfig:
    return DeliveryConfig.model_validate(
        {"channel": "maildir", "maildir": {"folder": folder}, **extra}
    )


def with_contacts(profile: Profile, *contacts: DeliveryConfig, **minutes: int) -> Profile:
    escalation = Escalation(contacts=list(contacts), **minutes)
    return profile.model_copy(update={"escalation": escalation})


@dataclass
class Desk:
    store: Store
    settings: DeliverySettings
    database: Database

    def notices(self, folder: str) -> list[EmailMessage]:
        new = self.settings.data_dir / "maildir" / folder / "new"
        files = sorted(new.iterdir()) if new.is_dir() else []
        found = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
        return [m for m in found if isinstance(m, EmailMessage)]

    def counts(self, *folders: str) -> list[int]:
        return [len(self.notices(folder)) for folder in folders]

    async def file(self, ref: str, at: datetime = T0, *, urgent: bool = True) -> None:
        report = NewReport(ref, f"hash-{ref}", f"token-{ref}", at, b"sealed", (), urgent=urgent)
        await self.store.save_report(report)

    async def acknowledge(self, ref: str, now: datetime) -> None:
        async with self.store.transaction() as tx:
            assert await records.acknowledge(tx, ref, now)

    async def trail(self) -> list[records.StaffEvent]:
        async with self.store.transaction() as tx:
            return list(reversed(await records.events(tx)))


Scenario = Callable[["Desk"], Awaitable[None]]


@pytest.fixture
def on_desk(database: Database, demo: LoadedProfile, tmp_path: Path) -> Callable[..., None]:
    """Run a scenario against a store of each kind and contacts (default: two folders)."""

    def run(scenario: Scenario, *contacts: DeliveryConfig, **options: Any) -> None:
        contacts = contacts or (maildir_contact("first"), maildir_contact("second"))
        environ = options.pop("environ", {})
        tls = options.pop("tls_context", None)
        profile = with_contacts(demo.profile, *contacts, **options)
        settings = DeliverySettings(
            profile=profile,
            data_dir=tmp_path / "data",
            environ=environ,
            tls_context=tls,
            timeout=5,
        )

        async def main() -> None:
            store = await database.open_store(clock=lambda: T0)
            try:
                await scenario(Desk(store, settings, database))
            finally:
                await store.close()

        asyncio.run(main())

    return run


def test_a_waiting_report_goes_round_the_contacts_until_acknowledged(
    on_desk: Callable[..., None],
) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT01")
        for now in (T0, T0 + timedelta(minutes=10), FIRST_DUE - timedelta(seconds=1)):
            assert await escalate(desk.store, desk.settings, now) == 0
        assert await escalate(desk.store, desk.settings, FIRST_DUE) == 1
        assert desk.counts("first", "second") == [1, 0]
        # Again in the same minute, or before the repeat is due: nothing more.
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(seconds=30)) == 0
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=9)) == 0
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=10)) == 1
        assert desk.counts("first", "second") == [1, 1]
        # After the last contact, the first again.
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=20)) == 1
        assert desk.counts("first", "second") == [2, 1]
        await desk.acknowledge("R-URGENT01", FIRST_DUE + timedelta(minutes=25))
        for minutes in (30, 40, 120):
            later = FIRST_DUE + timedelta(minutes=minutes)
            assert await escalate(desk.store, desk.settings, later) == 0
        assert desk.counts("first", "second") == [2, 1]
        trail = [(e.actor, e.action, e.report_ref, e.detail) for e in await desk.trail()]
        assert trail == [
            ("service", "escalated", "R-URGENT01", "contacts[0]"),
            ("service", "escalated", "R-URGENT01", "contacts[1]"),
            ("service", "escalated", "R-URGENT01", "contacts[0]"),
        ]

    on_desk(scenario)


def test_the_profile_sets_the_limit_and_the_repeat(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT02")
        first = T0.replace(second=0) + timedelta(minutes=31)
        assert await escalate(desk.store, desk.settings, first - timedelta(seconds=1)) == 0
        assert await escalate(desk.store, desk.settings, first) == 1
        assert await escalate(desk.store, desk.settings, first + timedelta(minutes=4)) == 0
        assert await escalate(desk.store, desk.settings, first + timedelta(minutes=5)) == 1
        assert desk.counts("first", "second") == [1, 1]

    on_desk(scenario, after_minutes=30, repeat_minutes=5)


def test_an_ordinary_or_closed_report_never_escalates(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-ORDINARY", urgent=False)
        await desk.file("R-CLOSED01")
        async with desk.store.transaction() as tx:
            await records.close(tx, "R-CLOSED01", "no action needed", T0)
        for hours in (1, 5, 48):
            assert await escalate(desk.store, desk.settings, T0 + timedelta(hours=hours)) == 0
        assert desk.counts("first", "second") == [0, 0]
        assert await desk.trail() == []

    on_desk(scenario)


def test_reports_due_together_make_one_notice_per_contact(
    on_desk: Callable[..., None],
) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-EARLIER1")
        assert await escalate(desk.store, desk.settings, FIRST_DUE) == 1
        # Ten minutes on: the earlier report's turn is the second contact's, and two new
        # reports reach their first notice.
        await desk.file("R-LATER001", T0 + timedelta(minutes=10))
        await desk.file("R-LATER002", T0 + timedelta(minutes=10))
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=10)) == 2
        assert desk.counts("first", "second") == [2, 1]
        # Twenty minutes on, the earlier report's turn is the first contact's again, and
        # the two later ones the second's: one notice each.
        await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=20))
        assert desk.counts("first", "second") == [3, 2]
        trail = [(e.report_ref, e.detail) for e in await desk.trail()]
        assert sorted(trail[1:4]) == [
            ("R-EARLIER1", "contacts[1]"),
            ("R-LATER001", "contacts[0]"),
            ("R-LATER002", "contacts[0]"),
        ]
        assert len(trail) == 7

    on_desk(scenario)


def test_the_notice_is_the_fixed_text_and_the_inbox_link(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT03")
        await escalate(desk.store, desk.settings, FIRST_DUE)
        await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=10))
        (english,) = desk.notices("first")
        assert english["Subject"] == "A danger-now report is waiting"
        assert english.get_content().splitlines() == [NOTICE, f"Open the inbox: {INBOX}"]
        assert english["Importance"] == "high"
        assert english["X-Outreach-Report"] is None
        assert english["Date"].datetime.second == 0
        (spanish,) = desk.notices("second")
        assert f"Abra la bandeja de entrada: {INBOX}" in spanish.get_content()
        for mail in (english, spanish):
            assert "R-URGENT03" not in mail.as_string()

    on_desk(scenario, maildir_contact("first"), maildir_contact("second", language="es"))


def test_a_notice_holds_nothing_of_the_report(
    database: Database, make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    profile = with_contacts(keyed_demo.profile, maildir_contact("duty"))
    loaded = LoadedProfile(profile, keyed_demo.folder, keyed_demo.path)
    settings = make_settings(database_url=database.url, profile=loaded)
    with start_client(settings) as tipster:
        answer = submit(tipster, description=CANARY, danger_now="yes")
        assert answer.status_code == 200, answer.text
    ref = database.rows("SELECT report_ref FROM reports")[0][0]

    async def scenario() -> None:
        store = await database.open_store()
        try:
            delivery = DeliverySettings(profile=profile, data_dir=settings.data_dir)
            later = datetime.now(UTC) + timedelta(minutes=12)
            assert await escalate(store, delivery, later) == 1
        finally:
            await store.close()

    asyncio.run(scenario())
    (notice,) = (settings.data_dir / "maildir" / "duty" / "new").iterdir()
    text = notice.read_bytes()
    assert b"canary" not in text and b"ladder" not in text
    assert ref.encode() not in text
    events = database.rows("SELECT action, report_ref, detail FROM staff_audit")
    assert ("escalated", ref, "contacts[0]") in events
    assert all(CANARY not in str(row) for row in database.rows("SELECT * FROM staff_audit"))


def test_two_passes_at_once_send_each_step_once(
    on_desk: Callable[..., None], database: Database
) -> None:
    async def scenario(desk: Desk) -> None:
        other = await database.open_store()
        try:
            for n in range(5):
                await desk.file(f"R-RACE000{n}")
            for minutes in (0, 10):
                now = FIRST_DUE + timedelta(minutes=minutes)
                await asyncio.gather(
                    escalate(desk.store, desk.settings, now),
                    escalate(other, desk.settings, now),
                    escalate(desk.store, desk.settings, now),
                )
        finally:
            await other.close()
        trail = await desk.trail()
        steps = sorted((e.report_ref, e.detail) for e in trail)
        assert len(steps) == 10 and len(set(steps)) == 10
        async with desk.store.transaction() as tx:
            assert await records.verify_chain(tx) == []
        steps_done = desk.database.rows("SELECT escalation_step FROM reports")
        assert sorted(row[0] for row in steps_done) == [2] * 5

    on_desk(scenario)


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    receiver = HTTPReceiver(free_port()).start()
    yield receiver
    receiver.stop()


@pytest.mark.smtp
def test_an_email_contact_gets_the_notice_over_smtp(
    on_desk: Callable[..., None], tmp_path: Path
) -> None:
    test_ca = make_ca(tmp_path / "tls")
    server = SMTPServer(free_port(), starttls=test_ca.server_context()).start()
    duty = DeliveryConfig.model_validate(smtp_delivery(server))

    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT04")
        await desk.file("R-URGENT05")
        assert await escalate(desk.store, desk.settings, FIRST_DUE) == 1

    try:
        on_desk(scenario, duty, maildir_contact("second"), tls_context=test_ca.client_context())
        (received,) = server.messages
    finally:
        server.stop()
    assert received.tls
    assert received.rcpt_tos == ["poc@partner.example.org"]
    mail = received.message
    assert mail["Subject"] == "A danger-now report is waiting"
    assert INBOX in mail.get_content()
    assert b"R-URGENT0" not in received.data


def test_a_webhook_contact_gets_a_signed_notice(
    on_desk: Callable[..., None], receiver: HTTPReceiver
) -> None:
    hook = DeliveryConfig.model_validate(
        {"channel": "webhook", "webhook": {"url": receiver.url, "secret_env": "PAGER"}}
    )

    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT06")
        assert await escalate(desk.store, desk.settings, FIRST_DUE) == 1

    on_desk(scenario, hook, environ={"PAGER": "pager-secret"})
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert set(body) == {"delivery_id", "subject", "text"}
    assert body["text"].splitlines() == [NOTICE, f"Open the inbox: {INBOX}"]
    msg_id, stamp = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    expected = sign(b"pager-secret", msg_id, stamp, request.body)
    assert request.headers["webhook-signature"] == expected


def test_a_failed_notice_hands_the_turn_to_the_next_contact(
    on_desk: Callable[..., None],
) -> None:
    closed = {
        "channel": "email",
        "email": {
            "to": ["duty@example.org"],
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "security": "plain",
            "sender": "alerts@example.org",
        },
    }

    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT07")
        assert await escalate(desk.store, desk.settings, FIRST_DUE) == 0
        assert desk.counts("second") == [0]
        # A minute later, not a whole repeat: the next contact.
        assert await escalate(desk.store, desk.settings, FIRST_DUE + timedelta(minutes=1)) == 1
        assert desk.counts("second") == [1]
        actions = [(e.action, e.detail) for e in await desk.trail()]
        assert actions == [("escalation_failed", "contacts[0]"), ("escalated", "contacts[1]")]

    on_desk(scenario, DeliveryConfig.model_validate(closed), maildir_contact("second"))


def test_the_delivery_worker_runs_the_escalation(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-URGENT08")
        options = WorkerOptions(escalation_seconds=0.05, poll_seconds=0.05)
        worker = DeliveryWorker(desk.store, desk.settings, options=options, clock=lambda: FIRST_DUE)
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(10):
                while desk.counts("first") != [1]:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert desk.counts("first", "second") == [1, 0]

    on_desk(scenario)

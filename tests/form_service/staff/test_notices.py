"""Staff notices on both databases, with a fake clock: news for a user coalesces into one
notice per every_minutes, urgent news goes at the next pass, new reports reach the intake
team without the report's own transaction doing anything for it, disabled users get
nothing, a failed notice is sent again at the next pass, and every notice is the same
fixed text whatever caused it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.worker import DeliveryWorker, WorkerOptions
from form_service.settings import Settings
from form_service.staff import notices as notices_pass
from form_service.staff.notices import LEASE, notify_role, notify_users, send_notices
from form_service.storage import NewReport, Store
from form_service.storage import notices as queue
from form_service.storage import postgres as postgres_store
from form_service.storage import sqlite as sqlite_store
from form_service.storage import staff as records
from form_service.storage.migrations import MIGRATIONS, NOTICES
from outreach.loader import LoadedProfile
from outreach.profile import Profile, StaffNotices
from tests.conftest import free_port
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.delivery.servers import SMTPServer, make_ca

T0 = datetime(2026, 3, 4, 5, 6, 30, tzinfo=UTC)
INBOX = "https://prevent.harbor-county.example.org/staff/"
SUBJECT = "Something new in the inbox"
BODY = ["There is something new for you in the team's inbox.", f"Open the inbox: {INBOX}"]
ANA, BEN, CARA, DAN = "ana@example.org", "ben@example.org", "cara@example.org", "dan@example.org"


def maildir_notices(**extra: Any) -> StaffNotices:
    return StaffNotices.model_validate(
        {"channel": "maildir", "maildir": {"folder": "staff-notices"}, **extra}
    )


def with_notices(profile: Profile, notices: StaffNotices | None) -> Profile:
    return profile.model_copy(update={"staff_notices": notices})


@dataclass
class Desk:
    store: Store
    settings: DeliverySettings
    database: Database
    users: dict[str, str]
    """Each user's id by address."""

    def mail(self) -> list[EmailMessage]:
        new = self.settings.data_dir / "maildir" / "staff-notices" / "new"
        files = sorted(new.iterdir()) if new.is_dir() else []
        found = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
        return [m for m in found if isinstance(m, EmailMessage)]

    def count(self, address: str) -> int:
        return sum(1 for m in self.mail() if m["To"] == address)

    def counts(self, *addresses: str) -> list[int]:
        return [self.count(address) for address in addresses]

    async def add(self, email: str, role: str = "intake", state: str = "active") -> str:
        user_id = f"user-{len(self.users) + 1}"
        async with self.store.transaction() as tx:
            await records.add_user(tx, user_id, email, role, T0)
            await records.set_state(tx, user_id, state)
        self.users[email] = user_id
        return user_id

    async def notify(self, *emails: str, at: datetime = T0, urgent: bool = False) -> None:
        async with self.store.transaction() as tx:
            await notify_users(tx, [self.users[e] for e in emails], at, urgent)

    async def notify_role(self, role: str, at: datetime = T0, urgent: bool = False) -> None:
        async with self.store.transaction() as tx:
            await notify_role(tx, role, at, urgent)

    async def file(self, ref: str, at: datetime = T0, *, urgent: bool = False) -> None:
        report = NewReport(ref, f"hash-{ref}", f"token-{ref}", at, b"sealed", (), urgent=urgent)
        await self.store.save_report(report)

    async def pass_at(self, now: datetime) -> int:
        return await send_notices(self.store, self.settings, now)

    async def trail(self) -> list[tuple[str, str, str | None, str | None]]:
        async with self.store.transaction() as tx:
            events = reversed(await records.events(tx))
        return [(e.actor, e.action, e.report_ref, e.detail) for e in events]


Scenario = Callable[[Desk], Awaitable[None]]


@pytest.fixture
def on_desk(database: Database, demo: LoadedProfile, tmp_path: Path) -> Callable[..., None]:
    """Run a scenario against a store of each kind, notices in the staff-notices folder."""

    def run(scenario: Scenario, notices: StaffNotices | None = None, **options: Any) -> None:
        settings = DeliverySettings(
            profile=with_notices(demo.profile, notices or maildir_notices()),
            data_dir=tmp_path / "data",
            timeout=5,
            **options,
        )

        async def main() -> None:
            store = await database.open_store(clock=lambda: T0)
            try:
                await scenario(Desk(store, settings, database, {}))
            finally:
                await store.close()

        asyncio.run(main())

    return run


def test_news_in_one_window_makes_one_notice(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        await desk.notify_role("intake", T0 + timedelta(seconds=10))
        await desk.file("R-NEWS0001")
        assert await desk.pass_at(T0 + timedelta(seconds=20)) == 1
        assert desk.counts(ANA) == [1]
        # More news within the next 15 minutes waits for one notice at their end.
        for minutes in (1, 5, 14):
            await desk.notify(ANA, at=T0 + timedelta(minutes=minutes))
            assert await desk.pass_at(T0 + timedelta(minutes=minutes, seconds=5)) == 0
        assert await desk.pass_at(T0.replace(second=0) + timedelta(minutes=15)) == 0
        assert await desk.pass_at(T0.replace(second=0) + timedelta(minutes=16)) == 1
        assert desk.counts(ANA) == [2]
        # Nothing new since: nothing more, however long.
        assert await desk.pass_at(T0 + timedelta(hours=3)) == 0
        assert desk.counts(ANA) == [2]
        assert [row[:3] for row in await desk.trail()] == [("service", "notice_sent", None)] * 2

    on_desk(scenario)


def test_urgent_news_goes_at_the_next_pass(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        assert await desk.pass_at(T0) == 1
        await desk.notify(ANA, at=T0 + timedelta(minutes=1))
        assert await desk.pass_at(T0 + timedelta(minutes=2)) == 0
        await desk.notify(ANA, at=T0 + timedelta(minutes=3), urgent=True)
        assert await desk.pass_at(T0 + timedelta(minutes=3)) == 1
        # The urgent notice told of the ordinary news too: the window starts again.
        assert await desk.pass_at(T0 + timedelta(minutes=10)) == 0
        assert await desk.pass_at(T0 + timedelta(hours=1)) == 0
        assert desk.counts(ANA) == [2]

    on_desk(scenario)


def test_the_profile_sets_the_window(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        assert await desk.pass_at(T0) == 1
        await desk.notify(ANA, at=T0 + timedelta(minutes=1))
        assert await desk.pass_at(T0.replace(second=0) + timedelta(minutes=2)) == 0
        assert await desk.pass_at(T0.replace(second=0) + timedelta(minutes=3)) == 1

    on_desk(scenario, maildir_notices(every_minutes=2))


def test_a_new_report_tells_every_active_intake_user(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.file("R-BEFORE01")
        for email, role in ((ANA, "intake"), (BEN, "intake"), (CARA, "admin")):
            await desk.add(email, role)
        await desk.add(DAN, "partner:school-district")
        # Reports stored before a user was first seen are not news to them.
        assert await desk.pass_at(T0) == 0
        await desk.file("R-NEW00001")
        await desk.file("R-NEW00002")
        assert await desk.pass_at(T0 + timedelta(minutes=1)) == 2
        assert desk.counts(ANA, BEN, CARA, DAN) == [1, 1, 0, 0]
        # A new report soon after waits for the window; a danger-now one does not.
        await desk.file("R-NEW00003")
        assert await desk.pass_at(T0 + timedelta(minutes=2)) == 0
        await desk.file("R-DANGER01", urgent=True)
        assert await desk.pass_at(T0 + timedelta(minutes=3)) == 2
        assert desk.counts(ANA, BEN, CARA, DAN) == [2, 2, 0, 0]
        assert await desk.pass_at(T0 + timedelta(hours=1)) == 0

    on_desk(scenario)


def test_a_role_reaches_only_its_active_users(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA, "partner:school-district")
        await desk.add(BEN, "partner:school-district", state="invited")
        await desk.add(CARA, "partner:sheriff-tau")
        await desk.notify_role("partner:school-district")
        assert await desk.pass_at(T0) == 1
        assert desk.counts(ANA, BEN, CARA) == [1, 0, 0]

    on_desk(scenario)


def test_a_disabled_user_gets_nothing(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        ana = await desk.add(ANA)
        await desk.add(BEN, state="disabled")
        await desk.notify(ANA, BEN, urgent=True)
        async with desk.store.transaction() as tx:
            await records.set_state(tx, ana, "disabled")
        await desk.file("R-NEW00004", urgent=True)
        assert await desk.pass_at(T0 + timedelta(minutes=1)) == 0
        # Enabled again, they are not told of what came while they were disabled.
        async with desk.store.transaction() as tx:
            await records.set_state(tx, ana, "active")
        assert await desk.pass_at(T0 + timedelta(hours=1)) == 0
        assert desk.mail() == []
        assert await desk.trail() == []

    on_desk(scenario)


def test_the_text_is_the_same_whatever_caused_it(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        for email in (ANA, BEN, CARA, DAN):
            await desk.add(email, "intake" if email == DAN else "partner:school-district")
        assert await desk.pass_at(T0) == 0  # the pass that first sees the intake user
        await desk.notify(ANA)
        await desk.notify(BEN, urgent=True)
        for n in range(7):
            await desk.notify(CARA, at=T0 + timedelta(seconds=n))
        await desk.file("R-DANGER02", urgent=True)
        await desk.file("R-DANGER03", urgent=True)
        assert await desk.pass_at(T0 + timedelta(minutes=1)) == 4
        mail = desk.mail()
        assert sorted(m["To"] for m in mail) == sorted([ANA, BEN, CARA, DAN])
        for message in mail:
            assert message["Subject"] == SUBJECT
            assert message.get_content().splitlines() == BODY
            assert message["Date"].datetime.second == 0
            assert message["Importance"] is None and message["X-Outreach-Report"] is None
            raw = message.as_string()
            assert "R-DANGER" not in raw and "7" not in message.get_content()

    on_desk(scenario)


def test_notices_in_the_profile_language(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        assert await desk.pass_at(T0) == 1
        (message,) = desk.mail()
        assert message["Subject"] == "Hay algo nuevo en la bandeja de entrada"
        assert message.get_content().splitlines() == [
            "Hay algo nuevo para usted en la bandeja de entrada del equipo.",
            f"Abra la bandeja de entrada: {INBOX}",
        ]

    on_desk(scenario, maildir_notices(language="es"))


def _email_notices(port: int, security: str = "plain") -> StaffNotices:
    return StaffNotices.model_validate(
        {
            "channel": "email",
            "email": {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "security": security,
                "sender": "inbox@harbor-county.example.org",
            },
        }
    )


@pytest.mark.smtp
def test_a_failed_notice_is_sent_at_the_next_pass(
    on_desk: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    server = SMTPServer(free_port())

    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        with caplog.at_level(logging.ERROR, logger="form_service"):
            assert await desk.pass_at(T0) == 0
        failures = [r for r in caplog.records if r.getMessage() == "staff_notices_failed"]
        assert [getattr(r, "fields", None) for r in failures] == [{"notices": 1}]
        assert ANA not in caplog.text and "ana" not in caplog.text
        assert await desk.trail() == []
        server.start()
        assert await desk.pass_at(T0 + timedelta(seconds=30)) == 1
        assert await desk.pass_at(T0 + timedelta(minutes=1)) == 0

    try:
        on_desk(scenario, _email_notices(server.port))
        (received,) = server.messages
    finally:
        server.stop()
    assert received.rcpt_tos == [ANA]


@pytest.mark.smtp
def test_a_real_smtp_server_receives_the_notice_at_the_users_address(
    on_desk: Callable[..., None], tmp_path: Path
) -> None:
    test_ca = make_ca(tmp_path / "tls")
    server = SMTPServer(free_port(), starttls=test_ca.server_context()).start()

    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.add(BEN, "partner:school-district")
        await desk.notify(ANA, BEN)
        assert await desk.pass_at(T0) == 2

    try:
        notices = _email_notices(server.port, "starttls")
        on_desk(scenario, notices, tls_context=test_ca.client_context())
        received = sorted(server.messages, key=lambda r: r.rcpt_tos)
    finally:
        server.stop()
    assert [r.rcpt_tos for r in received] == [[ANA], [BEN]]
    for one, address in zip(received, (ANA, BEN), strict=True):
        assert one.tls
        assert one.mail_from == "inbox@harbor-county.example.org"
        assert one.message["To"] == address
        assert one.message["Subject"] == SUBJECT
        assert one.message.get_content().splitlines() == BODY


def test_two_passes_at_once_send_each_notice_once(
    on_desk: Callable[..., None], database: Database
) -> None:
    async def scenario(desk: Desk) -> None:
        other = await database.open_store()
        try:
            for n in range(5):
                await desk.add(f"user{n}@example.org")
            await desk.notify_role("intake")
            await asyncio.gather(
                desk.pass_at(T0), send_notices(other, desk.settings, T0), desk.pass_at(T0)
            )
        finally:
            await other.close()
        assert sorted(m["To"] for m in desk.mail()) == [f"user{n}@example.org" for n in range(5)]
        assert len(await desk.trail()) == 5

    on_desk(scenario)


def test_a_pass_that_died_while_sending_is_taken_over_after_its_lease(
    on_desk: Callable[..., None], database: Database
) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        async with desk.store.transaction() as tx:
            (claimed,) = await queue.claim_due(tx, T0, 15, LEASE)
        assert claimed.email == ANA
        # Its process is gone: the notice waits out the claim (seconds), then the next pass
        # sends it.
        assert await desk.pass_at(T0 + LEASE - timedelta(seconds=1)) == 0
        assert await desk.pass_at(T0 + LEASE) == 1
        assert desk.counts(ANA) == [1]

    on_desk(scenario)


def test_a_pass_slower_than_its_lease_keeps_its_claims(
    on_desk: Callable[..., None], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass renews its claims while it sends: a second pass after the first lease has
    run out finds nothing to send, and the notice goes once."""
    monkeypatch.setattr(notices_pass, "LEASE", timedelta(seconds=0.4))
    monkeypatch.setattr(notices_pass, "RENEW_SECONDS", 0.1)
    send = notices_pass._send
    started = asyncio.Event()

    async def slow_send(*args: Any) -> bool:
        started.set()
        await asyncio.sleep(1.5)
        return await send(*args)

    monkeypatch.setattr(notices_pass, "_send", slow_send)

    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        first = asyncio.create_task(desk.pass_at(T0))
        await started.wait()
        begun = asyncio.get_running_loop().time()
        await asyncio.sleep(1.0)  # the first lease ran out long ago; its renewals hold
        other = await database.open_store(clock=lambda: T0)
        try:
            elapsed = timedelta(seconds=asyncio.get_running_loop().time() - begun)
            assert await send_notices(other, desk.settings, T0 + elapsed) == 0
        finally:
            await other.close()
        assert await first == 1
        assert desk.counts(ANA) == [1]

    on_desk(scenario)


def test_the_delivery_worker_sends_the_notices(on_desk: Callable[..., None]) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.add(ANA)
        await desk.notify(ANA)
        sent = asyncio.Event()
        folder = desk.settings.data_dir / "maildir" / "staff-notices" / "new"
        options = WorkerOptions(notices_seconds=0.05, poll_seconds=0.05)
        worker = DeliveryWorker(desk.store, desk.settings, options=options, clock=lambda: T0)
        task = asyncio.create_task(worker.run())

        async def watch() -> None:
            while not (folder.is_dir() and any(folder.iterdir())):
                await asyncio.sleep(0.02)
            sent.set()

        watcher = asyncio.create_task(watch())
        try:
            async with asyncio.timeout(10):
                await sent.wait()
        finally:
            for running in (task, watcher):
                running.cancel()
            await asyncio.gather(task, watcher, return_exceptions=True)
        assert desk.counts(ANA) == [1]

    on_desk(scenario)


def test_storing_a_report_writes_nothing_for_notices(
    database: Database, make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    """The report's transaction stays as it was: the pass finds the report afterwards."""
    quiet = with_notices(keyed_demo.profile, None)
    loaded = LoadedProfile(quiet, keyed_demo.folder, keyed_demo.path)
    settings = make_settings(database_url=database.url, profile=loaded)

    async def add_intake_user() -> None:
        store = await database.open_store()
        try:
            async with store.transaction() as tx:
                await records.add_user(tx, "user-1", ANA, "intake", T0)
                await records.set_state(tx, "user-1", "active")
                await notify_users(tx, ["user-1"], T0)
        finally:
            await store.close()

    async def send_later() -> int:
        store = await database.open_store()
        try:
            delivery = DeliverySettings(
                profile=with_notices(quiet, maildir_notices()), data_dir=settings.data_dir
            )
            return await send_notices(store, delivery, datetime.now(UTC) + timedelta(hours=1))
        finally:
            await store.close()

    asyncio.run(add_intake_user())
    before = database.rows("SELECT * FROM staff_notices")
    with start_client(settings) as tipster:
        assert submit(tipster, description="a ladder by the gate").status_code == 200
    assert database.rows("SELECT * FROM staff_notices") == before
    assert asyncio.run(send_later()) == 1
    # Told of the report: a later pass has no news for the user.
    (newest,) = database.rows("SELECT max(id) FROM reports")
    assert database.rows("SELECT last_report_id FROM staff_notices") == [newest]


def test_the_migration_keeps_the_staff_it_finds(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at the version before NOTICES gets the notices table and keeps its users."""
    before = tuple(m for m in MIGRATIONS if m.version < NOTICES.version)

    async def make_old() -> None:
        store = await database.open_store()
        try:
            async with store.transaction() as tx:
                await records.add_user(tx, "user-1", ANA, "intake", T0)
        finally:
            await store.close()

    async def migrate_and_notify() -> None:
        store = await database.open_store()
        try:
            async with store.transaction() as tx:
                await records.set_state(tx, "user-1", "active")
                await notify_users(tx, ["user-1"], T0)
        finally:
            await store.close()

    with monkeypatch.context() as patched:
        patched.setattr(sqlite_store, "MIGRATIONS", before)
        patched.setattr(postgres_store, "MIGRATIONS", before)
        asyncio.run(make_old())
    assert not database.rows("SELECT 1 FROM schema_migrations WHERE version = ?", NOTICES.version)
    asyncio.run(migrate_and_notify())
    versions = [row[0] for row in database.rows("SELECT version FROM schema_migrations")]
    assert sorted(versions) == [m.version for m in MIGRATIONS]
    assert database.rows("SELECT user_id, pending_since FROM staff_notices") == [
        ("user-1", "2026-03-04T05:06Z")
    ]

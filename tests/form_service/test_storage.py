"""The store on both databases: one durable transaction per report, and what the delivery
worker uses. Every test runs on SQLite and on a real PostgreSQL (``database`` fixture)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from form_service.storage import (
    NewReport,
    OutboxEntry,
    ReportStatus,
    Step,
    Store,
    StoreUnavailable,
)
from form_service.storage import attachments as stored_files
from form_service.storage.attachments import StoredFile
from form_service.storage.postgres import PostgresStore
from form_service.storage.sqlite import SqliteStore
from tests.databases import Database

T = TypeVar("T")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def run(work: Callable[[Any], Awaitable[T]], database: Database) -> T:
    async def main() -> T:
        store = await database.open_store(clock=lambda: NOW)
        try:
            return await work(store)
        finally:
            await store.close()

    return anyio.run(main)


def entry(partner: str, is_intake: bool = False, delivery_id: str | None = None) -> OutboxEntry:
    return OutboxEntry(
        delivery_id=delivery_id or f"d-{partner}",
        partner_id=partner,
        rule_id="intake" if is_intake else "rule-1",
        agreement_id=f"A-{partner}",
        payload='{"fields": {"description": "secret words"}}',
        is_intake=is_intake,
        fields=("description", "location"),
    )


def new_report(token: str = "t" * 32, ref: str = "R-AAAAAAAA", **kw: Any) -> NewReport:
    values: dict[str, Any] = {
        "report_ref": ref,
        "receipt_hash": f"hash-{token}",
        "token_id": token,
        "created_at": NOW,
        "content_age": b"age-encrypted",
        "outbox": (entry("intake-team", True), entry("harbor-schools")),
    }
    values.update(kw)
    return NewReport(**values)


def test_durability_settings(database: Database) -> None:
    database = database.own_database()
    if database.is_postgres:
        # Even where the database's default says otherwise, a report's commit waits for disk.
        database.execute(f"ALTER DATABASE {database.name} SET synchronous_commit = off")
        assert database.rows("SHOW synchronous_commit") == [("off",)]

        async def setting(store: PostgresStore) -> Any:
            async with store._connection() as conn:
                cursor = await conn.execute("SHOW synchronous_commit")
                return await cursor.fetchone()

        assert run(setting, database) == ("on",)
        return

    async def pragmas(store: SqliteStore) -> list[Any]:
        conn = store._conn
        assert conn is not None
        return [
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys")
        ]

    assert run(pragmas, database) == ["wal", 2, 1]  # synchronous 2 = FULL


def test_report_outbox_and_audit_in_one_save(database: Database) -> None:
    result = run(lambda s: s.save_report(new_report()), database)
    assert result.created and result.report_ref == "R-AAAAAAAA"
    assert database.rows("SELECT report_ref, status, created_at, content_age FROM reports") == [
        ("R-AAAAAAAA", "received", "2026-03-04T05:06Z", b"age-encrypted")
    ]
    assert database.rows(
        "SELECT partner_id, status, attempts, is_intake FROM outbox ORDER BY 1"
    ) == [
        ("harbor-schools", "pending", 0, 0),
        ("intake-team", "pending", 0, 1),
    ]
    assert database.rows(
        "SELECT event, partner_id, rule_id, agreement_id, fields FROM audit_events ORDER BY id",
    ) == [
        ("received", None, None, None, None),
        ("routed", "intake-team", "intake", "A-intake-team", "description,location"),
        ("routed", "harbor-schools", "rule-1", "A-harbor-schools", "description,location"),
    ]


def test_no_time_tied_to_a_report_is_finer_than_its_minute(database: Database) -> None:
    """A report is timed to the minute; so is every row written with it or a moment after
    (its first delivery or failed attempt), or those rows would time the report instead."""

    async def flow(store: Store) -> None:
        await store.save_report(new_report())
        first, second = await store.claim_due_deliveries(NOW, 10, 60)
        await store.mark_delivered(first.delivery_id)
        await store.mark_failed(second.delivery_id, "refused", NOW, dead=False)

    run(flow, database)
    times = [
        *database.rows("SELECT created_at FROM reports"),
        *database.rows("SELECT created_at FROM outbox"),
        # A retry's time is the failure's plus a random backoff, which hides the failure's.
        *database.rows(
            "SELECT next_attempt_at, delivered_at FROM outbox WHERE status = 'delivered'"
        ),
        *database.rows("SELECT at FROM audit_events"),
    ]
    values = [value for row in times for value in row]
    assert len(values) == 1 + 2 + 2 + 5
    for value in values:
        assert re.fullmatch(r"2026-03-04T05:06(Z|:00\.000000Z)", value), value


def test_a_failed_save_leaves_nothing_behind(database: Database) -> None:
    broken = new_report(outbox=(entry("a", delivery_id="same"), entry("b", delivery_id="same")))
    with pytest.raises(database.integrity_error):
        run(lambda s: s.save_report(broken), database)
    for table in ("reports", "outbox", "audit_events"):
        assert database.rows(f"SELECT count(*) FROM {table}") == [(0,)], table


def test_same_token_twice_stores_one_report(database: Database) -> None:
    async def twice(store: Store) -> tuple[Any, Any]:
        first = await store.save_report(new_report())
        second = await store.save_report(new_report(ref="R-BBBBBBBB", receipt_hash="other"))
        return first, second

    first, second = run(twice, database)
    assert first.created and not second.created
    assert second.receipt_hash == first.receipt_hash and second.report_ref == "R-AAAAAAAA"
    assert database.rows("SELECT count(*) FROM reports") == [(1,)]
    assert database.rows("SELECT count(*) FROM outbox") == [(2,)]


def test_reference_collision_is_reported_for_a_retry(database: Database) -> None:
    from form_service.storage import ReferenceTaken

    async def collide(store: Store) -> None:
        await store.save_report(new_report())
        await store.save_report(new_report(token="u" * 32, receipt_hash="h2"))

    with pytest.raises(ReferenceTaken):
        run(collide, database)


def test_status_follows_the_intake_delivery(database: Database) -> None:
    async def flow(store: Store) -> list[Any]:
        await store.save_report(new_report())
        seen = [await store.report_status("hash-" + "t" * 32), await store.report_status("nope")]
        await store.mark_delivered("d-harbor-schools")
        seen.append(await store.report_status("hash-" + "t" * 32))
        await store.mark_delivered("d-intake-team")
        seen.append(await store.report_status("hash-" + "t" * 32))
        await store.mark_reviewed("R-AAAAAAAA")
        seen.append(await store.report_status("hash-" + "t" * 32))
        return seen

    assert run(flow, database) == [
        ReportStatus.received,
        None,
        ReportStatus.received,
        ReportStatus.delivered,
        ReportStatus.reviewed,
    ]


def test_claim_deliver_and_wipe(database: Database) -> None:
    async def flow(store: Store) -> Any:
        await store.save_report(new_report())
        claimed = await store.claim_due_deliveries(NOW, 10, 60)
        again = await store.claim_due_deliveries(NOW, 10, 60)
        await store.mark_delivered(claimed[0].delivery_id)
        await store.mark_delivered(claimed[0].delivery_id)  # a second call changes nothing
        return claimed, again

    claimed, again = run(flow, database)
    assert {c.partner_id for c in claimed} == {"intake-team", "harbor-schools"}
    assert all(c.attempts == 1 and c.payload and c.report_ref == "R-AAAAAAAA" for c in claimed)
    assert again == []
    delivered = claimed[0].delivery_id
    assert database.rows(f"SELECT status, payload FROM outbox WHERE id = '{delivered}'") == [
        ("delivered", None)
    ]
    assert database.rows("SELECT count(*) FROM audit_events WHERE event = 'delivered'") == [(1,)]


def test_rows_not_yet_due_are_not_claimed(database: Database) -> None:
    # A report's rows are due from the start of its minute, the finest time they keep.
    before = NOW.replace(second=0) - timedelta(microseconds=1)
    early = run(lambda s: _save_then_claim(s, before), database)
    assert early == []


def test_rows_are_due_from_the_start_of_their_reports_minute(database: Database) -> None:
    due = run(lambda s: _save_then_claim(s, NOW.replace(second=0)), database)
    assert len(due) == 2


async def _save_then_claim(store: Store, at: datetime) -> list[Any]:
    await store.save_report(new_report())
    return await store.claim_due_deliveries(at, 10, 60)


def test_an_expired_claim_is_claimed_again(database: Database) -> None:
    async def flow(store: Store) -> tuple[Any, Any]:
        await store.save_report(new_report())
        await store.claim_due_deliveries(NOW, 10, 60)
        during = await store.claim_due_deliveries(NOW + timedelta(seconds=30), 10, 60)
        after = await store.claim_due_deliveries(NOW + timedelta(seconds=61), 10, 60)
        return during, after

    during, after = run(flow, database)
    assert during == [] and len(after) == 2 and all(d.attempts == 2 for d in after)


def test_a_renewed_lease_keeps_the_row_from_other_claims(database: Database) -> None:
    async def flow(store: Store) -> tuple[Any, ...]:
        await store.save_report(new_report())
        held = await store.claim_due_deliveries(NOW, 10, 10)
        renewed = await store.renew_leases(held, NOW + timedelta(seconds=8), 10)
        # Past the first lease, within the renewed one: nobody takes the rows.
        during = await store.claim_due_deliveries(NOW + timedelta(seconds=15), 10, 10)
        # The holder stopped renewing (it died): the rows go to the next claim.
        after = await store.claim_due_deliveries(NOW + timedelta(seconds=19), 10, 10)
        return renewed, during, after

    renewed, during, after = run(flow, database)
    assert renewed == {"d-intake-team", "d-harbor-schools"}
    assert during == [] and len(after) == 2 and all(d.attempts == 2 for d in after)


def test_only_a_claim_still_held_is_renewed(database: Database) -> None:
    """Rows delivered, failed, or taken over by another worker after the lease ran out are
    no longer the first claim's: renewing them changes nothing."""

    async def flow(store: Store) -> tuple[Any, ...]:
        await store.save_report(new_report(outbox=(entry("intake-team", True),)))
        await store.save_report(new_report("u" * 32, "R-BBBBBBBB", outbox=(entry("p2"),)))
        await store.save_report(new_report("v" * 32, "R-CCCCCCCC", outbox=(entry("p3"),)))
        first = await store.claim_due_deliveries(NOW, 10, 10)
        by_id = {row.delivery_id: row for row in first}
        await store.mark_delivered("d-intake-team")
        await store.mark_failed("d-p2", "refused", NOW + timedelta(hours=1), dead=False)
        expired = NOW + timedelta(seconds=11)
        (taken_over,) = await store.claim_due_deliveries(expired, 10, 10)
        stale = await store.renew_leases(first, expired, 60)
        fresh = await store.renew_leases([taken_over], expired, 60)
        again = await store.claim_due_deliveries(expired + timedelta(seconds=30), 10, 10)
        none = await store.renew_leases([], expired, 60)
        return by_id.keys(), taken_over, stale, fresh, again, none

    ids, taken_over, stale, fresh, again, none = run(flow, database)
    assert set(ids) == {"d-intake-team", "d-p2", "d-p3"}
    assert taken_over.delivery_id == "d-p3" and taken_over.attempts == 2
    assert stale == set() and fresh == {"d-p3"} and again == [] and none == set()
    assert database.rows("SELECT id, status FROM outbox ORDER BY id") == [
        ("d-intake-team", "delivered"),
        ("d-p2", "pending"),
        ("d-p3", "sending"),
    ]


def test_failure_then_retry_then_dead(database: Database) -> None:
    later = NOW + timedelta(minutes=5)

    async def flow(store: Store) -> list[Any]:
        await store.save_report(new_report(outbox=(entry("intake-team", True),)))
        (first,) = await store.claim_due_deliveries(NOW, 10, 60)
        await store.mark_failed(first.delivery_id, "connection refused", later, dead=False)
        before = await store.claim_due_deliveries(later - timedelta(seconds=1), 10, 60)
        (second,) = await store.claim_due_deliveries(later, 10, 60)
        await store.mark_failed(second.delivery_id, "still refused", later, dead=True)
        gone = await store.claim_due_deliveries(later + timedelta(days=1), 10, 60)
        return [before, second.attempts, gone]

    assert run(flow, database) == [[], 2, []]
    assert database.rows("SELECT status, last_error, payload IS NOT NULL FROM outbox") == [
        ("dead", "still refused", 1)
    ]
    assert database.rows(
        "SELECT event, outcome FROM audit_events WHERE event IN"
        " ('delivery_attempt', 'dead') ORDER BY id",
    ) == [("delivery_attempt", "failed"), ("delivery_attempt", "failed"), ("dead", "gave up")]


def test_retry_partner_now_makes_only_that_partners_waiting_rows_due(database: Database) -> None:
    later = NOW + timedelta(hours=1)

    async def flow(store: Store) -> tuple[int, int, list[str]]:
        await store.save_report(new_report())
        for row in await store.claim_due_deliveries(NOW, 10, 60):
            await store.mark_failed(row.delivery_id, "refused", later, dead=False)
        pulled = await store.retry_partner_now("harbor-schools", NOW)
        again = await store.retry_partner_now("harbor-schools", NOW)  # nothing waits now
        due = await store.claim_due_deliveries(NOW, 10, 60)
        return pulled, again, [row.partner_id for row in due]

    assert run(flow, database) == (1, 0, ["harbor-schools"])


def test_purge_removes_old_reports_and_records_it_in_the_audit_trail(database: Database) -> None:
    old = NOW - timedelta(days=400)

    async def flow(store: Store) -> tuple[list[str], list[str], list[Any], list[Any]]:
        await store.save_report(new_report(created_at=old))
        rows = (entry("intake-team", True, "d-new"),)
        await store.save_report(new_report("u" * 32, "R-BBBBBBBB", receipt_hash="h2", outbox=rows))
        async with store.transaction() as tx:
            for ref in ("R-AAAAAAAA", "R-BBBBBBBB"):
                await tx.run(
                    "INSERT INTO case_notes (report_ref, author, at, body_age)"
                    " VALUES (?, 'intake@example.org', '2026-03-04T05:06Z', ?)",
                    (ref, b"sealed note"),
                )
                await tx.run(
                    "INSERT INTO partner_shares (report_ref, partner_id, rule_id, state, view_age)"
                    " VALUES (?, 'harbor-schools', 'schools', 'shared', ?)",
                    (ref, b"sealed view"),
                )
                await tx.run(
                    "INSERT INTO tipster_messages (report_id, sender, at, body_age)"
                    " SELECT id, 'tipster', '2026-03-04T05:06Z', ? FROM reports"
                    " WHERE report_ref = ?",
                    (b"sealed message", ref),
                )
        purged = await store.purge(NOW, 365)
        again = await store.purge(NOW, 365)
        trail = await store.events("R-AAAAAAAA", None, None)
        today = await store.events(None, NOW.replace(hour=0, minute=0), NOW + timedelta(days=1))
        return purged, again, trail, today

    purged, again, trail, today = run(flow, database)
    assert purged == ["R-AAAAAAAA"] and again == []
    assert [e.event for e in trail] == ["received", "routed", "routed", "purged"]
    assert trail[-1].at == "2026-03-04T05:06Z" and trail[-1].outcome == "older than 365 days"
    # The old report's events are dated when it arrived, but its purge today.
    assert [(e.report_ref, e.event) for e in today] == [
        ("R-BBBBBBBB", "received"),
        ("R-BBBBBBBB", "routed"),
        ("R-AAAAAAAA", "purged"),
    ]
    assert database.rows("SELECT report_ref FROM reports") == [("R-BBBBBBBB",)]
    assert database.rows("SELECT id FROM outbox") == [("d-new",)]
    # The case's work goes with the report: notes, partners' copies, the conversation.
    for table in ("case_notes", "partner_shares"):
        assert database.rows(f"SELECT report_ref FROM {table}") == [("R-BBBBBBBB",)], table
    assert database.rows(
        "SELECT r.report_ref FROM tipster_messages m JOIN reports r ON r.id = m.report_id"
    ) == [("R-BBBBBBBB",)]
    assert database.rows("SELECT count(*) FROM tipster_messages") == [(1,)]


_SQLITE_ONLY = """
import asyncio, sys, uuid
from datetime import UTC, datetime
from pathlib import Path

import form_service.app
from form_service.delivery.admin import audit_trail, purge_now
from form_service.delivery.worker import DeliveryWorker, delivery_settings
from form_service.intake import prepare_report
from form_service.settings import Settings
from form_service.storage import open_store
from outreach.loader import load_profile
from tests.form_service.samples import REPORT

data = Path(sys.argv[1])
settings = Settings.from_env(load_profile(), data, {"OUTREACH_DATA_DIR": str(data)})


async def cycle() -> int:
    store = open_store(settings)
    await store.open()
    try:
        new, _ = prepare_report(
            REPORT, settings.profile.profile, str(uuid.uuid4()), "s", datetime.now(UTC)
        )
        await store.save_report(new)
        worker = DeliveryWorker(store, delivery_settings(settings))
        sent = await worker.drain()
        await worker.purge()
        return sent
    finally:
        await store.close()


assert asyncio.run(cycle()) > 0
purge_now(settings)
assert audit_trail(settings, None, None, None)
print(sorted({name.split(".")[0] for name in sys.modules} & {"psycopg", "psycopg_pool"}))
"""


def test_a_sqlite_service_never_imports_the_postgresql_driver(tmp_path: Path) -> None:
    """The service, a worker cycle and the operator's commands on SQLite: psycopg is for
    PostgreSQL sites only (a fresh interpreter, since this one has it loaded)."""
    done = subprocess.run(
        [sys.executable, "-c", _SQLITE_ONLY, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_audit_log_holds_no_content(database: Database) -> None:
    run(lambda s: s.save_report(new_report()), database)
    dump = "\n".join(str(row) for row in database.rows("SELECT * FROM audit_events"))
    assert "secret words" not in dump


def test_ping_and_closed_store(database: Database) -> None:
    async def flow() -> tuple[bool, bool]:
        store = database.store()
        await store.open()
        alive = await store.ping()
        await store.close()
        return alive, await store.ping()

    assert anyio.run(flow) == (True, False)


def run_plain(work: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(work)


def test_two_stores_never_claim_the_same_row(database: Database) -> None:
    """Two workers' stores claiming at once (SKIP LOCKED on PostgreSQL) share out the rows."""

    async def flow() -> list[list[str]]:
        first, second = await database.open_store(), await database.open_store()
        try:
            for n in range(30):
                rows = (entry("intake-team", True, f"d{n}-a"), entry("harbor", False, f"d{n}-b"))
                await first.save_report(
                    new_report(f"{n:032d}", f"R-{n:08d}", receipt_hash=f"h{n}", outbox=rows)
                )
            claims: list[list[str]] = [[], []]
            for _ in range(20):
                batches = await asyncio.gather(
                    first.claim_due_deliveries(NOW, 4, 60), second.claim_due_deliveries(NOW, 4, 60)
                )
                for taken, batch in zip(claims, batches, strict=True):
                    taken += [row.delivery_id for row in batch]
            return claims
        finally:
            await first.close()
            await second.close()

    claims = run_plain(flow)
    everything = claims[0] + claims[1]
    assert len(everything) == len(set(everything)) == 60


def test_one_form_sent_to_two_processes_at_once_is_one_report(database: Database) -> None:
    """Single use of a form token is the database's UNIQUE constraint, across processes."""

    async def flow() -> list[Any]:
        first, second = await database.open_store(), await database.open_store()
        try:
            return list(
                await asyncio.gather(
                    first.save_report(new_report()),
                    second.save_report(new_report(ref="R-BBBBBBBB", receipt_hash="other")),
                )
            )
        finally:
            await first.close()
            await second.close()

    results = run_plain(flow)
    assert sorted(r.created for r in results) == [False, True]
    assert len({(r.report_ref, r.receipt_hash) for r in results}) == 1
    assert database.rows("SELECT count(*) FROM reports") == [(1,)]
    assert database.rows("SELECT count(*) FROM outbox") == [(2,)]


def test_a_commit_wakes_listeners_in_other_processes(database: Database) -> None:
    # Two stores on one database stand for two processes: NOTIFY on PostgreSQL, a named
    # pipe per listener on SQLite (storage/sqlite_wakeups.py).
    async def flow() -> None:
        listening, writing = await database.open_store(), await database.open_store()
        wakeup = asyncio.Event()
        task = asyncio.create_task(listening.listen_for_reports(wakeup))
        try:
            if database.is_postgres:
                await asyncio.wait_for(wakeup.wait(), 5)  # set once on (re)connecting
            else:
                await asyncio.sleep(0.2)  # its pipe is in place
                assert not wakeup.is_set()
            wakeup.clear()
            await writing.save_report(new_report())
            await asyncio.wait_for(wakeup.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await listening.close()
            await writing.close()

    run_plain(flow)


def make_read_only(database: Database, store: Any) -> None:
    """The database of *store* refuses writes from now on (make_writable undoes it)."""
    if database.is_postgres:
        name = database.name
        database.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        # Sessions take the setting when they start: end the store's, it reconnects.
        database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database.name}' AND pid <> pg_backend_pid()"
        )
    else:
        store._conn.execute("PRAGMA query_only = ON")


def make_writable(database: Database) -> None:
    if database.is_postgres:
        assert database.server is not None
        database.server.admin(f"ALTER DATABASE {database.name} RESET default_transaction_read_only")


def test_a_read_only_database_is_unavailable_and_keeps_nothing(database: Database) -> None:
    database = database.own_database()

    async def flow(store: Any) -> None:
        make_read_only(database, store)
        with pytest.raises(StoreUnavailable):
            await store.save_report(new_report())

    run(flow, database)
    make_writable(database)
    assert database.rows("SELECT count(*) FROM reports") == [(0,)]
    assert database.rows("SELECT count(*) FROM outbox") == [(0,)]


def file_steps(file_id: str, pieces: int) -> list[Step]:
    """The steps that store a waiting photo of *pieces* delivery pieces, as a tipster's
    request does (storage/attachments.py)."""
    file = StoredFile(file_id, 1, "image", "image/jpeg", 10, pieces, stored_files.WAITING)
    data = [b"piece %d" % n for n in range(pieces)]
    return list(stored_files.new_file("t" * 32, None, file, [], data, NOW))


def held_pieces(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Pieces' rows with their data as bytes (PostgreSQL's driver gives memoryview)."""
    return [(*row[:-1], bytes(row[-1])) for row in rows]


_PIECES = "SELECT attachment_id, copy, n, data FROM attachment_pieces ORDER BY attachment_id, n"


def test_write_runs_its_steps_in_one_transaction(database: Database) -> None:
    """A file's row and its pieces are stored together or not at all: a last step that
    fails (a duplicate piece) takes the earlier steps' rows with it."""
    steps = file_steps("f-broken", 3)
    broken = [*steps, steps[1]]

    async def flow(store: Store) -> tuple[Any, ...]:
        with pytest.raises(database.integrity_error):
            await store.write(broken, 3 * 1024)
        after_failure = (
            await store.fetch("SELECT count(*) FROM attachments"),
            await store.fetch("SELECT count(*) FROM attachment_pieces"),
        )
        await store.write(file_steps("f-kept", 3), 3 * 1024)
        files = await store.fetch("SELECT id, state, delivery_pieces FROM attachments")
        return after_failure, files, held_pieces(await store.fetch(_PIECES))

    after_failure, files, pieces = run(flow, database)
    assert after_failure == ([(0,)], [(0,)])
    assert files == [("f-kept", "waiting", 3)]
    expected = [("f-kept", "delivery", n, b"piece %d" % n) for n in range(3)]
    assert pieces == expected
    # Committed: another connection sees the same.
    assert held_pieces(database.rows(_PIECES)) == expected
    assert database.rows("SELECT id FROM attachments") == [("f-kept",)]


def test_write_takes_its_steps_as_they_run(database: Database) -> None:
    """Steps come from a generator one at a time (a file's pieces read as they are
    written): a step that fails means the generator is never asked for the next one."""
    advanced: list[tuple[str, int]] = []

    def steps(file_id: str, fail_at: int | None) -> Iterator[Step]:
        listed = file_steps(file_id, 4)
        for n, step in enumerate(listed):
            advanced.append((file_id, n))
            yield listed[1] if n == fail_at else step

    async def flow(store: Store) -> list[tuple[Any, ...]]:
        with pytest.raises(database.integrity_error):
            await store.write(steps("f-broken", 2), 4 * 1024)
        assert advanced == [("f-broken", 0), ("f-broken", 1), ("f-broken", 2)]
        advanced.clear()
        await store.write(steps("f-kept", None), 4 * 1024)
        return held_pieces(await store.fetch(_PIECES))

    pieces = run(flow, database)
    assert advanced == [("f-kept", n) for n in range(5)]  # the file's row, then 4 pieces
    assert pieces == [("f-kept", "delivery", n, b"piece %d" % n) for n in range(4)]
    assert database.rows("SELECT id FROM attachments") == [("f-kept",)]


def test_a_report_is_saved_with_its_files_in_one_transaction(database: Database) -> None:
    """A new report's files are written in its own transaction: a file step that fails
    takes the report with it. A resubmit of the form and a taken reference (retried with
    the same steps) never begin the steps."""
    from form_service.storage import ReferenceTaken

    begun: list[str] = []

    def steps(file_id: str, fail: bool = False) -> Iterator[Step]:
        begun.append(file_id)
        listed = file_steps(file_id, 2)
        yield from [*listed, listed[1]] if fail else listed

    async def flow(store: Store) -> tuple[Any, ...]:
        with pytest.raises(database.integrity_error):
            await store.save_report(new_report(), steps("f-broken", fail=True), 2048)
        after_failure = await store.fetch("SELECT count(*) FROM reports")
        first = await store.save_report(new_report(), steps("f-kept"), 2048)
        again = new_report(ref="R-BBBBBBBB", receipt_hash="other")
        second = await store.save_report(again, steps("f-again"), 2048)
        with pytest.raises(ReferenceTaken):
            other = new_report(token="u" * 32, receipt_hash="h2")
            await store.save_report(other, steps("f-collide"), 2048)
        return after_failure, first.created, second.created

    after_failure, first, second = run(flow, database)
    assert after_failure == [(0,)]
    assert (first, second) == (True, False)
    assert begun == ["f-broken", "f-kept"]
    assert database.rows("SELECT id FROM attachments") == [("f-kept",)]
    assert database.rows("SELECT count(*) FROM attachment_pieces") == [(2,)]
    assert database.rows("SELECT report_ref FROM reports") == [("R-AAAAAAAA",)]


def test_a_write_to_a_read_only_database_is_unavailable_and_keeps_nothing(
    database: Database,
) -> None:
    database = database.own_database()

    async def flow(store: Any) -> None:
        make_read_only(database, store)
        with pytest.raises(StoreUnavailable):
            await store.write(file_steps("f-1", 2), 2 * 1024)

    run(flow, database)
    make_writable(database)
    assert database.rows("SELECT count(*) FROM attachments") == [(0,)]
    assert database.rows("SELECT count(*) FROM attachment_pieces") == [(0,)]

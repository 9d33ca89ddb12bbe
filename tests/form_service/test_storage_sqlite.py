"""The SQLite store: one durable transaction per report, and what the delivery worker uses."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from form_service.storage import NewReport, OutboxEntry, ReportStatus
from form_service.storage.sqlite import SqliteStore

T = TypeVar("T")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def run(work: Callable[[SqliteStore], Awaitable[T]], path: Path) -> T:
    async def main() -> T:
        store = SqliteStore(path, clock=lambda: NOW)
        await store.open()
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


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "reports.sqlite3"


def test_durability_pragmas(path: Path) -> None:
    async def pragmas(store: SqliteStore) -> list[Any]:
        conn = store._conn
        assert conn is not None
        return [
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys")
        ]

    assert run(pragmas, path) == ["wal", 2, 1]  # synchronous 2 = FULL


def test_report_outbox_and_audit_in_one_save(path: Path) -> None:
    result = run(lambda s: s.save_report(new_report()), path)
    assert result.created and result.report_ref == "R-AAAAAAAA"
    assert query(path, "SELECT report_ref, status, created_at, content_age FROM reports") == [
        ("R-AAAAAAAA", "received", "2026-03-04T05:06Z", b"age-encrypted")
    ]
    assert query(path, "SELECT partner_id, status, attempts, is_intake FROM outbox ORDER BY 1") == [
        ("harbor-schools", "pending", 0, 0),
        ("intake-team", "pending", 0, 1),
    ]
    assert query(
        path,
        "SELECT event, partner_id, rule_id, agreement_id, fields FROM audit_events ORDER BY id",
    ) == [
        ("received", None, None, None, None),
        ("routed", "intake-team", "intake", "A-intake-team", "description,location"),
        ("routed", "harbor-schools", "rule-1", "A-harbor-schools", "description,location"),
    ]


def test_a_failed_save_leaves_nothing_behind(path: Path) -> None:
    broken = new_report(outbox=(entry("a", delivery_id="same"), entry("b", delivery_id="same")))
    with pytest.raises(sqlite3.IntegrityError):
        run(lambda s: s.save_report(broken), path)
    for table in ("reports", "outbox", "audit_events"):
        assert query(path, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_same_token_twice_stores_one_report(path: Path) -> None:
    async def twice(store: SqliteStore) -> tuple[Any, Any]:
        first = await store.save_report(new_report())
        second = await store.save_report(new_report(ref="R-BBBBBBBB", receipt_hash="other"))
        return first, second

    first, second = run(twice, path)
    assert first.created and not second.created
    assert second.receipt_hash == first.receipt_hash and second.report_ref == "R-AAAAAAAA"
    assert query(path, "SELECT count(*) FROM reports") == [(1,)]
    assert query(path, "SELECT count(*) FROM outbox") == [(2,)]


def test_reference_collision_is_reported_for_a_retry(path: Path) -> None:
    from form_service.storage import ReferenceTaken

    async def collide(store: SqliteStore) -> None:
        await store.save_report(new_report())
        await store.save_report(new_report(token="u" * 32, receipt_hash="h2"))

    with pytest.raises(ReferenceTaken):
        run(collide, path)


def test_status_follows_the_intake_delivery(path: Path) -> None:
    async def flow(store: SqliteStore) -> list[Any]:
        await store.save_report(new_report())
        seen = [await store.report_status("hash-" + "t" * 32), await store.report_status("nope")]
        await store.mark_delivered("d-harbor-schools")
        seen.append(await store.report_status("hash-" + "t" * 32))
        await store.mark_delivered("d-intake-team")
        seen.append(await store.report_status("hash-" + "t" * 32))
        await store.mark_reviewed("R-AAAAAAAA")
        seen.append(await store.report_status("hash-" + "t" * 32))
        return seen

    assert run(flow, path) == [
        ReportStatus.received,
        None,
        ReportStatus.received,
        ReportStatus.delivered,
        ReportStatus.reviewed,
    ]


def test_claim_deliver_and_wipe(path: Path) -> None:
    async def flow(store: SqliteStore) -> Any:
        await store.save_report(new_report())
        claimed = await store.claim_due_deliveries(NOW, 10, 60)
        again = await store.claim_due_deliveries(NOW, 10, 60)
        await store.mark_delivered(claimed[0].delivery_id)
        await store.mark_delivered(claimed[0].delivery_id)  # a second call changes nothing
        return claimed, again

    claimed, again = run(flow, path)
    assert {c.partner_id for c in claimed} == {"intake-team", "harbor-schools"}
    assert all(c.attempts == 1 and c.payload and c.report_ref == "R-AAAAAAAA" for c in claimed)
    assert again == []
    delivered = claimed[0].delivery_id
    assert query(path, f"SELECT status, payload FROM outbox WHERE id = '{delivered}'") == [
        ("delivered", None)
    ]
    assert query(path, "SELECT count(*) FROM audit_events WHERE event = 'delivered'") == [(1,)]


def test_rows_not_yet_due_are_not_claimed(path: Path) -> None:
    early = run(lambda s: _save_then_claim(s, NOW - timedelta(seconds=1)), path)
    assert early == []


async def _save_then_claim(store: SqliteStore, at: datetime) -> list[Any]:
    await store.save_report(new_report())
    return await store.claim_due_deliveries(at, 10, 60)


def test_an_expired_claim_is_claimed_again(path: Path) -> None:
    async def flow(store: SqliteStore) -> tuple[Any, Any]:
        await store.save_report(new_report())
        await store.claim_due_deliveries(NOW, 10, 60)
        during = await store.claim_due_deliveries(NOW + timedelta(seconds=30), 10, 60)
        after = await store.claim_due_deliveries(NOW + timedelta(seconds=61), 10, 60)
        return during, after

    during, after = run(flow, path)
    assert during == [] and len(after) == 2 and all(d.attempts == 2 for d in after)


def test_failure_then_retry_then_dead(path: Path) -> None:
    later = NOW + timedelta(minutes=5)

    async def flow(store: SqliteStore) -> list[Any]:
        await store.save_report(new_report(outbox=(entry("intake-team", True),)))
        (first,) = await store.claim_due_deliveries(NOW, 10, 60)
        await store.mark_failed(first.delivery_id, "connection refused", later, dead=False)
        before = await store.claim_due_deliveries(later - timedelta(seconds=1), 10, 60)
        (second,) = await store.claim_due_deliveries(later, 10, 60)
        await store.mark_failed(second.delivery_id, "still refused", later, dead=True)
        gone = await store.claim_due_deliveries(later + timedelta(days=1), 10, 60)
        return [before, second.attempts, gone]

    assert run(flow, path) == [[], 2, []]
    assert query(path, "SELECT status, last_error, payload IS NOT NULL FROM outbox") == [
        ("dead", "still refused", 1)
    ]
    assert query(
        path,
        "SELECT event, outcome FROM audit_events WHERE event IN"
        " ('delivery_attempt', 'dead') ORDER BY id",
    ) == [("delivery_attempt", "failed"), ("delivery_attempt", "failed"), ("dead", "gave up")]


def test_audit_log_holds_no_content(path: Path) -> None:
    run(lambda s: s.save_report(new_report()), path)
    dump = "\n".join(str(row) for row in query(path, "SELECT * FROM audit_events"))
    assert "secret words" not in dump


def test_ping_and_closed_store(path: Path) -> None:
    async def flow() -> tuple[bool, bool]:
        store = SqliteStore(path)
        await store.open()
        alive = await store.ping()
        await store.close()
        return alive, await store.ping()

    assert anyio.run(flow) == (True, False)

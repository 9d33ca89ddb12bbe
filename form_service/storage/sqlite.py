"""The embedded store: stdlib sqlite3 in WAL mode with synchronous=FULL.

One connection, guarded by a lock, is used from worker threads (anyio.to_thread): SQLite
allows one writer at a time anyway, and a single connection keeps that simple. Every write
runs in BEGIN IMMEDIATE ... COMMIT, so a commit that returned is on disk.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from form_service.storage import (
    Delivery,
    NewReport,
    ReferenceTaken,
    ReportStatus,
    SaveResult,
)
from form_service.storage.migrations import MIGRATIONS

T = TypeVar("T")


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text, so times compare correctly as strings."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def minute_stamp(moment: datetime) -> str:
    # Report and routing times are kept to the minute: finer ones only help match a
    # report to one visitor in some network log.
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, now: datetime) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        with transaction(conn):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (migration.version, stamp(now)),
            )
        applied.append(migration.version)
    return applied


def _audit(conn: sqlite3.Connection, at: str, report_ref: str, event: str, **cols: Any) -> None:
    conn.execute(
        "INSERT INTO audit_events (at, report_ref, event, partner_id, rule_id, agreement_id,"
        " fields, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            report_ref,
            event,
            cols.get("partner_id"),
            cols.get("rule_id"),
            cols.get("agreement_id"),
            cols.get("fields"),
            cols.get("outcome"),
        ),
    )


def _insert_report(conn: sqlite3.Connection, report: NewReport) -> None:
    at = minute_stamp(report.created_at)
    cursor = conn.execute(
        "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
        " content_age) VALUES (?, ?, ?, 'received', ?, ?)",
        (report.report_ref, report.receipt_hash, report.token_id, at, report.content_age),
    )
    report_id = cursor.lastrowid
    _audit(conn, at, report.report_ref, "received")
    created = stamp(report.created_at)
    for entry in report.outbox:
        conn.execute(
            "INSERT INTO outbox (id, report_id, partner_id, rule_id, agreement_id, payload,"
            " status, attempts, next_attempt_at, created_at, is_intake)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
            (
                entry.delivery_id,
                report_id,
                entry.partner_id,
                entry.rule_id,
                entry.agreement_id,
                entry.payload,
                created,
                created,
                int(entry.is_intake),
            ),
        )
        _audit(
            conn,
            at,
            report.report_ref,
            "routed",
            partner_id=entry.partner_id,
            rule_id=entry.rule_id,
            agreement_id=entry.agreement_id,
            fields=",".join(entry.fields),
        )


_DELIVERY_COLUMNS = (
    "o.id, r.report_ref, o.partner_id, o.rule_id, o.agreement_id, o.payload, o.attempts,"
    " o.is_intake"
)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    delivery_id, ref, partner_id, rule_id, agreement_id, payload, attempts, is_intake = row
    return Delivery(
        delivery_id, ref, partner_id, rule_id, agreement_id, payload, attempts, bool(is_intake)
    )


class SqliteStore:
    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._clock = clock or _utcnow

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                if self._conn is None:
                    raise RuntimeError("the store is closed")
                return work(self._conn)

        return await anyio.to_thread.run_sync(locked)

    async def open(self) -> None:
        def start() -> None:
            conn = connect(self.path)
            migrate(conn, self._clock())
            self._conn = conn

        await anyio.to_thread.run_sync(start)

    async def close(self) -> None:
        def stop() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(stop)

    async def ping(self) -> bool:
        try:
            return await self._run(lambda c: c.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, RuntimeError):
            return False

    async def save_report(self, report: NewReport) -> SaveResult:
        def save(conn: sqlite3.Connection) -> SaveResult:
            with transaction(conn):
                # The write lock is held from here, so no other submit of this token can
                # slip in between the look-up and the insert.
                row = conn.execute(
                    "SELECT report_ref, receipt_hash FROM reports WHERE token_id = ?",
                    (report.token_id,),
                ).fetchone()
                if row is not None:
                    return SaveResult(False, row[0], row[1])
                try:
                    _insert_report(conn, report)
                except sqlite3.IntegrityError as error:
                    if "report_ref" in str(error):
                        raise ReferenceTaken from None
                    raise
            return SaveResult(True, report.report_ref, report.receipt_hash)

        return await self._run(save)

    async def report_status(self, receipt_hash: str) -> ReportStatus | None:
        def look(conn: sqlite3.Connection) -> ReportStatus | None:
            row = conn.execute(
                "SELECT status FROM reports WHERE receipt_hash = ?", (receipt_hash,)
            ).fetchone()
            return ReportStatus(row[0]) if row else None

        return await self._run(look)

    async def mark_reviewed(self, report_ref: str) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "UPDATE reports SET status = 'reviewed' WHERE report_ref = ?", (report_ref,)
                )

        await self._run(mark)

    async def claim_due_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[Delivery]:
        def claim(conn: sqlite3.Connection) -> list[Delivery]:
            at = stamp(now)
            until = stamp(now + timedelta(seconds=lease_seconds))
            with transaction(conn):
                rows = conn.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM outbox o JOIN reports r"  # noqa: S608
                    " ON r.id = o.report_id"
                    " WHERE (o.status = 'pending' AND o.next_attempt_at <= ?)"
                    " OR (o.status = 'sending' AND o.claimed_until < ?)"
                    " ORDER BY o.next_attempt_at LIMIT ?",
                    (at, at, limit),
                ).fetchall()
                conn.executemany(
                    "UPDATE outbox SET status = 'sending', claimed_until = ?,"
                    " attempts = attempts + 1 WHERE id = ?",
                    [(until, row[0]) for row in rows],
                )
            return [_delivery((*row[:6], row[6] + 1, row[7])) for row in rows]

        return await self._run(claim)

    async def mark_delivered(self, delivery_id: str) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            at = stamp(self._clock())
            with transaction(conn):
                row = conn.execute(
                    "SELECT o.report_id, r.report_ref, o.partner_id, o.rule_id,"
                    " o.agreement_id, o.is_intake FROM outbox o JOIN reports r"
                    " ON r.id = o.report_id WHERE o.id = ? AND o.status != 'delivered'",
                    (delivery_id,),
                ).fetchone()
                if row is None:
                    return
                report_id, ref, partner_id, rule_id, agreement_id, is_intake = row
                conn.execute(
                    "UPDATE outbox SET status = 'delivered', payload = NULL,"
                    " claimed_until = NULL, delivered_at = ? WHERE id = ?",
                    (at, delivery_id),
                )
                if is_intake:
                    conn.execute(
                        "UPDATE reports SET status = 'delivered'"
                        " WHERE id = ? AND status = 'received'",
                        (report_id,),
                    )
                _audit(
                    conn,
                    at,
                    ref,
                    "delivered",
                    partner_id=partner_id,
                    rule_id=rule_id,
                    agreement_id=agreement_id,
                    outcome="delivered",
                )

        await self._run(mark)

    async def mark_failed(
        self, delivery_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        def mark(conn: sqlite3.Connection) -> None:
            at = stamp(self._clock())
            with transaction(conn):
                row = conn.execute(
                    "SELECT r.report_ref, o.partner_id, o.rule_id, o.agreement_id"
                    " FROM outbox o JOIN reports r ON r.id = o.report_id WHERE o.id = ?",
                    (delivery_id,),
                ).fetchone()
                if row is None:
                    return
                conn.execute(
                    "UPDATE outbox SET status = ?, next_attempt_at = ?, claimed_until = NULL,"
                    " last_error = ? WHERE id = ? AND status != 'delivered'",
                    (
                        "dead" if dead else "pending",
                        stamp(next_attempt_at),
                        error[:500],
                        delivery_id,
                    ),
                )
                who = dict(zip(("partner_id", "rule_id", "agreement_id"), row[1:], strict=True))
                _audit(conn, at, row[0], "delivery_attempt", outcome="failed", **who)
                if dead:
                    _audit(conn, at, row[0], "dead", outcome="gave up", **who)

        await self._run(mark)


def _utcnow() -> datetime:
    return datetime.now(UTC)

"""Outbox and retention chores beside the store: retry a partner's backlog now, purge
expired reports, read the audit trail, and (SQLite) empty the WAL after a wipe.

``Housekeeping`` is what the worker and the operator commands need. On PostgreSQL the store
does these chores itself (storage/postgres.py). On SQLite this module's class runs
on its own connection to the same database file (WAL lets it sit beside the store's
connection). ``secure_delete`` makes SQLite overwrite what it deletes, and a TRUNCATE
checkpoint copies the WAL into the main file and empties it, so a wiped payload survives
in no free page and no WAL frame.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

import anyio.to_thread

from form_service.storage import AuditEvent
from form_service.storage.sqlite import connect, transaction
from form_service.times import minute_iso, stamp

__all__ = ["AuditEvent", "Housekeeping", "SqliteHousekeeping", "audit_events", "purge_expired"]

T = TypeVar("T")


class Housekeeping(Protocol):
    async def checkpoint(self) -> bool:
        """Make wiped payloads unrecoverable from the database files; False if not yet."""

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        """Make a partner's waiting rows due: its server answered again after failures."""

    async def purge(self, now: datetime, days: int) -> list[str]:
        """Delete reports older than *days* with their outbox rows; the references."""

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]: ...


class SqliteHousekeeping:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA secure_delete=ON")
            self._conn = conn
        return self._conn

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return work(self._connection())

    async def arun(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.run, work)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def checkpoint(self) -> bool:
        """Empty the WAL into the database file; False if a reader kept it from finishing."""

        def truncate(conn: sqlite3.Connection) -> tuple[int, ...] | None:
            # While it waits for the writer, a TRUNCATE checkpoint holds new writers off:
            # wait briefly, and if the store is busy try again at the next interval.
            conn.execute("PRAGMA busy_timeout = 250")
            try:
                row: tuple[int, ...] | None = conn.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
                return row
            finally:
                conn.execute("PRAGMA busy_timeout = 10000")

        row = await self.arun(truncate)
        return row is not None and row[0] == 0

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        """Make a partner's waiting rows due: its server answered again after failures."""

        def pull(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                cursor = conn.execute(
                    "UPDATE outbox SET next_attempt_at = ? WHERE partner_id = ?"
                    " AND status = 'pending' AND next_attempt_at > ?",
                    (stamp(now), partner_id, stamp(now)),
                )
            return cursor.rowcount

        return await self.arun(pull)

    async def purge(self, now: datetime, days: int) -> list[str]:
        return await self.arun(lambda conn: purge_expired(conn, now, days))

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]:
        return await self.arun(lambda conn: audit_events(conn, report_ref, since, until))


def purge_expired(conn: sqlite3.Connection, now: datetime, days: int) -> list[str]:
    """Delete reports older than *days* with their outbox rows; the audit trail stays."""
    cutoff = minute_iso(now - timedelta(days=days))
    with transaction(conn):
        refs = [
            row[0]
            for row in conn.execute(
                "SELECT report_ref FROM reports WHERE created_at < ? ORDER BY id", (cutoff,)
            )
        ]
        conn.executemany(
            "INSERT INTO audit_events (at, report_ref, event, outcome) VALUES (?, ?, 'purged', ?)",
            [(minute_iso(now), ref, f"older than {days} days") for ref in refs],
        )
        # Outbox rows go with their report (ON DELETE CASCADE), delivered or not.
        conn.execute("DELETE FROM reports WHERE created_at < ?", (cutoff,))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return refs


def audit_events(
    conn: sqlite3.Connection,
    report_ref: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[AuditEvent]:
    # Fixed SQL: an absent filter is NULL and matches everything.
    ref = report_ref or None
    first = _prefix(since) if since else None
    last = _prefix(until) if until else None
    rows = conn.execute(
        "SELECT at, report_ref, event, partner_id, rule_id, agreement_id, fields, outcome"
        " FROM audit_events WHERE (? IS NULL OR report_ref = ?)"
        " AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) ORDER BY id",
        (ref, ref, first, first, last, last),
    ).fetchall()
    return [AuditEvent(*row) for row in rows]


def _prefix(moment: datetime) -> str:
    # Audit times are stored to the minute or finer; a bare minute prefix sorts before both.
    return moment.strftime("%Y-%m-%dT%H:%M")

"""The embedded store: stdlib sqlite3 in WAL mode with synchronous=FULL.

Writes go to one connection owned by a group-commit thread (storage/writer.py): SQLite
allows one writer at a time anyway, and reports that arrive together share one fsync.
Reads use a second connection from worker threads (anyio.to_thread); WAL lets them run
beside a commit. Every write is inside BEGIN IMMEDIATE ... COMMIT, so a write that
returned is on disk. Delivery workers in other processes are woken through named pipes
beside the file (sqlite_wakeups.py), as PostgreSQL's NOTIFY wakes them for its store.

A third connection, opened when first needed, runs the TRUNCATE checkpoints that empty the
WAL, so that (with ``secure_delete``) a wiped payload survives in no free page and no WAL
frame. It is not the writer's: commits do not queue behind a checkpoint waiting for the disk.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio.to_thread

from form_service.logs import log_event
from form_service.private_files import private_database, private_folder
from form_service.storage import (
    AuditEvent,
    ClaimedDelivery,
    NewReport,
    ReportStatus,
    SaveResult,
    Step,
    StoreUnavailable,
)
from form_service.storage import sqlite_ops as ops
from form_service.storage.checkpointer import Checkpointer
from form_service.storage.migrations import MIGRATIONS
from form_service.storage.sqlite_wakeups import wakeups_beside
from form_service.storage.writer import GroupCommitWriter
from form_service.times import stamp

__all__ = ["SqliteStore", "connect", "migrate", "transaction"]

T = TypeVar("T")


def connect(path: Path) -> sqlite3.Connection:
    if not path.parent.exists():
        private_folder(path.parent)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Deleted and wiped rows are overwritten with zeros, so delivered report text does not
    # survive in free pages (some SQLite builds turn this on by default; not all do).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (disk full) may leave the transaction open, and a connection
        # stuck in one would refuse every later BEGIN.
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


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
            # Another process starting beside this one may have applied it meanwhile.
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone():
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (migration.version, stamp(now)),
            )
        applied.append(migration.version)
    return applied


class SqliteStore:
    """Writes go through one group-commit thread; reads use a connection of their own."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._reader: sqlite3.Connection | None = None
        self._writer: GroupCommitWriter | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._checkpointer: Checkpointer | None = None
        self._clock = clock or _utcnow
        self._wakeups = wakeups_beside(path)
        self._staff: sqlite3.Connection | None = None
        self._staff_lock = asyncio.Lock()

    @property
    def _conn(self) -> sqlite3.Connection | None:
        """The write connection, for tests that inspect its settings."""
        return self._write_conn

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._read_lock:
                if self._reader is None:
                    raise RuntimeError("the store is closed")
                return work(self._reader)

        return await anyio.to_thread.run_sync(locked)

    async def _truncate_wal(self, wait_ms: int) -> bool:
        def locked() -> bool:
            with self._checkpoint_lock:
                if self._writer is None:
                    raise RuntimeError("the store is closed")
                return ops.truncate_wal(self._checkpointing(), wait_ms)

        return await anyio.to_thread.run_sync(locked)

    def _checkpointing(self) -> sqlite3.Connection:
        """The connection that checkpoints (the lock held)."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = connect(self.path)
        return self._checkpoint_conn

    def _checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, waiting for nobody (the
        checkpointer's thread)."""
        with self._checkpoint_lock:
            if self._writer is not None:
                self._checkpointing().execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def _write(self, work: Callable[[sqlite3.Connection], T], size: int = 0) -> T:
        if self._writer is None:
            raise RuntimeError("the store is closed")
        return await self._writer.run(work, size)

    async def open(self) -> None:
        def start() -> None:
            # Before any connection of this process has the file open (private_files.py).
            private_database(self.path)
            conn = connect(self.path)
            migrate(conn, self._clock())
            # Checkpoints run beside the reports' commits (storage/checkpointer.py).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._write_conn = conn
            self._reader = connect(self.path)
            self._staff = connect(self.path)

        await anyio.to_thread.run_sync(start)
        assert self._write_conn is not None
        self._checkpointer = Checkpointer(self._checkpoint)
        self._writer = GroupCommitWriter(self._write_conn, self._checkpointer.poke)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        checkpointer, self._checkpointer = self._checkpointer, None

        def stop() -> None:
            if writer is not None:
                writer.stop()
            if checkpointer is not None:
                checkpointer.stop()
            with self._read_lock, self._checkpoint_lock:
                for conn in (self._reader, self._write_conn, self._checkpoint_conn, self._staff):
                    if conn is not None:
                        conn.close()
                self._reader = self._write_conn = self._checkpoint_conn = self._staff = None

        await anyio.to_thread.run_sync(stop)

    async def ping(self) -> bool:
        if self._writer is None or not self._writer.alive():
            return False
        try:
            return await self._read(lambda c: c.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, RuntimeError):
            return False

    async def save_report(
        self, report: NewReport, files: Iterable[Step] = (), size: int = 0
    ) -> SaveResult:
        try:
            result = await self._write(lambda conn: ops.save_report(conn, report, files), size)
        except sqlite3.OperationalError as error:
            # A read-only file or folder, a full disk, an I/O error, a lock held too long.
            raise StoreUnavailable(str(error)) from error
        if result.created:
            self._wakeups.notify_soon()  # committed: workers in other processes look now
        return result

    async def listen_for_reports(self, wakeup: asyncio.Event) -> None:
        """Woken by every process that commits a report to this file (sqlite_wakeups.py)."""
        try:
            await self._wakeups.listen(wakeup)
        except OSError as error:
            # A folder where no pipe can be made: the worker still finds reports by polling.
            log_event("wakeups_unavailable", logging.WARNING, error=type(error).__name__)

    async def report_status(self, receipt_hash: str) -> ReportStatus | None:
        try:
            return await self._read(lambda conn: ops.report_status(conn, receipt_hash))
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error

    async def mark_reviewed(self, report_ref: str) -> None:
        await self._write(lambda conn: ops.mark_reviewed(conn, report_ref))

    async def claim_due_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        return await self._write(lambda conn: ops.claim(conn, now, limit, lease_seconds))

    async def renew_leases(
        self, held: Sequence[ClaimedDelivery], now: datetime, lease_seconds: float
    ) -> set[str]:
        if not held:
            return set()
        return await self._write(lambda conn: ops.renew(conn, held, now, lease_seconds))

    async def mark_delivered(self, delivery_id: str) -> None:
        await self._write(lambda conn: ops.mark_delivered(conn, delivery_id, self._clock()))

    async def mark_failed(
        self, delivery_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        at = self._clock()
        await self._write(
            lambda conn: ops.mark_failed(conn, delivery_id, error, next_attempt_at, dead, at)
        )

    # -- chores and the operator's queries -----------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    async def checkpoint(self) -> bool:
        # While it waits for the writer, a TRUNCATE checkpoint holds new writers off: it
        # waits briefly, and if the store is busy the worker tries again at its next interval.
        return await self._truncate_wal(wait_ms=250)

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        return await self._write(lambda conn: ops.retry_partner_now(conn, partner_id, now))

    async def purge(self, now: datetime, days: int) -> list[str]:
        refs = await self._write(lambda conn: ops.purge(conn, now, days))
        # The purged reports' payloads leave the WAL too (waiting as long as a write would).
        await self._truncate_wal(wait_ms=10_000)
        return refs

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]:
        return await self._read(lambda conn: ops.events(conn, report_ref, since, until))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        """A connection of its own for the team's side: BEGIN IMMEDIATE waits (up to the
        busy timeout) while the report writer commits, and reports wait likewise for it."""
        if _IN_STAFF_TRANSACTION.get():
            # The lock below is not re-entrant: a nested block would wait for itself.
            raise RuntimeError("a staff transaction is already open in this task")
        async with self._staff_lock:
            token = _IN_STAFF_TRANSACTION.set(True)
            try:
                async with self._staff_transaction() as tx:
                    yield tx
            finally:
                _IN_STAFF_TRANSACTION.reset(token)

    @asynccontextmanager
    async def _staff_transaction(self) -> AsyncIterator[_SqliteTx]:
        conn = self._staff
        if conn is None:
            raise RuntimeError("the store is closed")
        tx = _SqliteTx(conn)
        try:
            await tx.call(lambda: conn.execute("BEGIN IMMEDIATE"))
            yield tx
            await tx.call(lambda: conn.execute("COMMIT"))
        except sqlite3.OperationalError as error:
            await _rollback(tx, conn)
            raise StoreUnavailable(str(error)) from error
        except BaseException:
            await _rollback(tx, conn)
            raise

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return await self._read(lambda conn: conn.execute(statement, tuple(params)).fetchall())
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error

    async def write(self, steps: Iterable[Step], size: int = 0) -> None:
        try:
            await self._write(lambda conn: ops.run_steps(conn, steps), size)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error


_IN_STAFF_TRANSACTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "in_staff_transaction", default=False
)


class _SqliteTx:
    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def call(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work)

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.call(lambda: self.conn.execute(statement, tuple(params)).fetchall())

    async def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        return await self.call(lambda: self.conn.execute(statement, tuple(params)).rowcount)


async def _rollback(tx: _SqliteTx, conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            await tx.call(lambda: conn.execute("ROLLBACK"))


def _utcnow() -> datetime:
    return datetime.now(UTC)

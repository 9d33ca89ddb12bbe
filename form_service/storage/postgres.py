"""The shared store: PostgreSQL through psycopg 3 and its connection pool.

Several service and worker processes, on one machine or several, use one database:

- a report is one transaction (report, outbox rows, audit events, NOTIFY), committed with
  ``synchronous_commit`` on, so a receipt is shown only for a report on disk;
- a form token is used once because ``reports.token_id`` is UNIQUE: the second submit of
  a form, to any process, finds the first report (``ON CONFLICT DO NOTHING``);
- workers claim outbox rows with ``SELECT … FOR UPDATE SKIP LOCKED``, so two never take
  the same row and none waits for another's;
- the commit NOTIFYs ``outreach_reports``; every worker LISTENs, and claims at once.

The statements are the shared ones (statements.py) with psycopg's placeholders; what is
PostgreSQL's own is here: the insert that skips a duplicate form token, the claim, NOTIFY
and LISTEN, and the updates that return the row they changed.

Why psycopg 3 rather than asyncpg: it ships type hints (mypy --strict checks this module),
its pool checks a connection before lending it (after a PostgreSQL restart the service
recovers without serving errors from dead connections), and one library has both the
asynchronous API the service uses and a synchronous one for scripts and tests. Its speed is
not the limit: a report waits on the commit's fsync, not on the driver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool

from form_service.logs import log_event
from form_service.storage import (
    AuditEvent,
    ClaimedDelivery,
    NewReport,
    ReferenceTaken,
    ReportStatus,
    SaveResult,
    Step,
    StoreUnavailable,
    rows,
)
from form_service.storage import statements as q
from form_service.storage.migrations import MIGRATIONS, Migration
from form_service.storage.statements import for_postgres
from form_service.times import minute_iso, minute_start_stamp, stamp

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

CHANNEL = "outreach_reports"
# Any fixed number: processes starting together take turns at migrating.
_MIGRATION_LOCK = 0x6F757472  # "outr"
_REF_CONSTRAINT = "reports_report_ref_key"
# What "the database is not there or will not write" looks like: connection and pool
# errors (OperationalError covers a pool timeout and a disk-full error too), a read-only
# database (SQLSTATE 25006), a connection that closed under us.
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, errors.ReadOnlySqlTransaction)


async def migrate(
    conn: Connection, now: datetime, migrations: tuple[Migration, ...] | None = None
) -> list[int]:
    """Apply every migration not yet recorded, one transaction each; the versions applied."""
    applied = []
    for migration in MIGRATIONS if migrations is None else migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            cursor = await conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            )
            if await cursor.fetchone() is not None:
                continue
            for statement in migration.for_dialect("postgres"):
                await conn.execute(sql.SQL(statement))
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                (migration.version, stamp(now)),
            )
        applied.append(migration.version)
    return applied


async def _durable_commits(conn: Connection) -> None:
    """Each pooled connection commits to disk even where the server's default says not to."""
    cursor = await conn.execute("SHOW synchronous_commit")
    row = await cursor.fetchone()
    if row is not None and row[0] == "off":
        await conn.execute("SET synchronous_commit = on")


_AUDIT = for_postgres(q.AUDIT_INSERT)
_REPORT_INSERT = for_postgres(q.REPORT_INSERT + " ON CONFLICT (token_id) DO NOTHING RETURNING id")
# Each claim takes the rows due under one condition (statements.CLAIM_ORDER), skipping the
# rows another worker holds: two never take the same row and none waits for another's.
_CLAIMS = tuple(
    for_postgres(
        f"WITH due AS (SELECT o.id FROM outbox o WHERE {due} LIMIT ? FOR UPDATE SKIP LOCKED)"  # noqa: S608
        f" UPDATE outbox o SET {q.LEASE} FROM due, reports r"
        f" WHERE o.id = due.id AND r.id = o.report_id RETURNING {q.CLAIMED_COLUMNS}"
    )
    for due in q.CLAIM_ORDER
)
# Every row held in one statement: the shared RENEW_LEASE's test, for a list of claims.
_RENEW = (
    "UPDATE outbox o SET claimed_until = %s"
    " FROM unnest(%s::text[], %s::int[]) AS held (id, attempts)"
    " WHERE o.id = held.id AND o.attempts = held.attempts AND o.status = 'sending'"
    " RETURNING o.id"
)
# One statement: it wipes the row and returns what the next steps need of it.
_DELIVERED = for_postgres(
    f"UPDATE outbox o SET {q.WIPE_DELIVERED} FROM reports r"  # noqa: S608
    " WHERE o.id = ? AND o.status != 'delivered' AND r.id = o.report_id"
    f" RETURNING {q.DELIVERED_COLUMNS}"
)
_PURGE = for_postgres(q.DELETE_EXPIRED + " RETURNING id, report_ref")


async def _run(conn: Connection, steps: Iterable[Step]) -> None:
    for statement, values in steps:
        await conn.execute(for_postgres(statement), values)


async def _insert_report(conn: Connection, report: NewReport) -> int | None:
    """The new report's id, or None when a report with the same form token exists."""
    at = minute_iso(report.created_at)
    cursor = await conn.execute(
        _REPORT_INSERT,
        rows.report_row(report, at),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    report_id = int(row[0])
    outbox, audit = rows.new_report_rows(
        report, report_id, at, minute_start_stamp(report.created_at)
    )
    async with conn.cursor() as many:
        await many.executemany(for_postgres(q.OUTBOX_INSERT), outbox)
        await many.executemany(_AUDIT, audit)
        if report.shares:
            await many.executemany(for_postgres(q.SHARE_INSERT), rows.share_rows(report, at))
    return report_id


class PostgresStore:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.timeout = timeout
        self._clock = clock or _utcnow
        self._pool: AsyncConnectionPool[Connection] | None = None

    # -- connections ---------------------------------------------------------------------

    async def open(self) -> None:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=min(2, self.pool_size),
            max_size=self.pool_size,
            kwargs={"autocommit": True},
            configure=_durable_commits,
            # A connection is tried before it is lent: after a restart of the server the
            # dead ones are dropped instead of failing a tipster's report.
            check=AsyncConnectionPool.check_connection,
            timeout=self.timeout,
            # A failed connection attempt is not retried in the background: the next request
            # tries again, so the service is back as soon as the database answers.
            reconnect_timeout=0,
            name="outreach",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self.timeout)
            async with pool.connection() as conn:
                applied = await migrate(conn, self._clock())
        except BaseException:
            await pool.close()
            raise
        if applied:
            log_event("database_migrated", versions=",".join(map(str, applied)))
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise RuntimeError("the store is closed")
        async with self._pool.connection() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute("SELECT 1")
                return await cursor.fetchone() == (1,)
        except (psycopg.Error, RuntimeError):
            return False

    # -- reports -------------------------------------------------------------------------

    async def save_report(
        self, report: NewReport, files: Iterable[Step] = (), size: int = 0
    ) -> SaveResult:
        try:
            async with self._connection() as conn, conn.transaction():
                report_id = await _insert_report(conn, report)
                if report_id is None:
                    # The form was sent before, to this process or another: its report.
                    cursor = await conn.execute(for_postgres(q.EARLIER_REPORT), (report.token_id,))
                    row = await cursor.fetchone()
                    if row is None:
                        raise StoreUnavailable("the earlier report of this form vanished")
                    return SaveResult(False, row[0], row[1], rows.optional_bytes(row[2]))
                await _run(conn, files)
                # Delivered at commit, to every process that LISTENs.
                await conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))
        except errors.UniqueViolation as error:
            if error.diag.constraint_name == _REF_CONSTRAINT:
                raise ReferenceTaken from None
            raise
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return SaveResult(True, report.report_ref, report.receipt_hash, report.receipt_sealed)

    async def report_status(self, receipt_hash: str) -> ReportStatus | None:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(for_postgres(q.REPORT_STATUS), (receipt_hash,))
                row = await cursor.fetchone()
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return ReportStatus(row[0]) if row else None

    async def mark_reviewed(self, report_ref: str) -> None:
        async with self._connection() as conn:
            await conn.execute(for_postgres(q.MARK_REVIEWED), (report_ref,))

    async def listen_for_reports(self, wakeup: asyncio.Event) -> None:
        """LISTEN on a connection of its own (outside the pool), reconnecting after a loss."""
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=max(2, int(self.timeout))
                )
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    delay = 0.1
                    # Reports committed while nobody listened are claimed now.
                    wakeup.set()
                    async for _ in conn.notifies():
                        wakeup.set()
            except psycopg.Error as error:
                log_event("database_listen_lost", logging.WARNING, error=type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- the outbox ----------------------------------------------------------------------

    async def claim_due_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        at = stamp(now)
        until = stamp(now + timedelta(seconds=lease_seconds))
        taken: list[tuple[Any, ...]] = []
        async with self._connection() as conn, conn.transaction():
            for claim in _CLAIMS:
                if len(taken) < limit:
                    cursor = await conn.execute(claim, (at, limit - len(taken), until))
                    taken += await cursor.fetchall()
        return [rows.claimed_delivery(row) for row in taken]

    async def renew_leases(
        self, held: Sequence[ClaimedDelivery], now: datetime, lease_seconds: float
    ) -> set[str]:
        if not held:
            return set()
        until = stamp(now + timedelta(seconds=lease_seconds))
        ids = [row.delivery_id for row in held]
        attempts = [row.attempts for row in held]
        async with self._connection() as conn:
            cursor = await conn.execute(_RENEW, (until, ids, attempts))
            return {str(row[0]) for row in await cursor.fetchall()}

    async def mark_delivered(self, delivery_id: str) -> None:
        at, delivered = rows.delivered_times(self._clock())
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(_DELIVERED, (delivered, delivery_id))
            row = await cursor.fetchone()
            if row is not None:
                await _run(conn, rows.delivered_steps(row, at))

    async def mark_failed(
        self, delivery_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        now = self._clock()
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                for_postgres(q.ATTEMPTED_ROW + " FOR UPDATE OF o"), (delivery_id,)
            )
            row = await cursor.fetchone()
            if row is not None:
                await _run(
                    conn, rows.failed_steps(row, delivery_id, error, next_attempt_at, dead, now)
                )

    # -- chores and the operator's queries -----------------------------------------------

    def exists(self) -> bool:
        return True  # the server holds it; open() creates the tables it lacks

    async def checkpoint(self) -> bool:
        """Nothing to do: PostgreSQL's WAL and (auto)vacuum need no help from the worker."""
        return True

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(
                for_postgres(q.RETRY_PARTNER_NOW), (stamp(now), partner_id, stamp(now))
            )
            return cursor.rowcount

    async def purge(self, now: datetime, days: int) -> list[str]:
        # DELETE … RETURNING, not a select first: of two purges at once, each records only
        # the reports it deleted itself.
        cutoff = rows.retention_cutoff(now, days)
        async with self._connection() as conn, conn.transaction():
            for statement in q.DELETE_EXPIRED_CASE_WORK:
                await conn.execute(for_postgres(statement), (cutoff,))
            cursor = await conn.execute(_PURGE, (cutoff,))
            refs = [ref for _, ref in sorted(await cursor.fetchall())]
            async with conn.cursor() as many:
                await many.executemany(_AUDIT, rows.purged_rows(refs, now, days))
        return refs

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                for_postgres(q.AUDIT_EVENTS), rows.audit_filter(report_ref, since, until)
            )
            return rows.audit_events(await cursor.fetchall())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTx]:
        try:
            async with self._connection() as conn, conn.transaction():
                yield _PostgresTx(conn)
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            async with self._connection() as conn:
                return await _PostgresTx(conn).fetch(statement, params)
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    async def write(self, steps: Iterable[Step], size: int = 0) -> None:
        try:
            async with self._connection() as conn, conn.transaction():
                await _run(conn, steps)
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error


class _PostgresTx:
    dialect: Literal["postgres"] = "postgres"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = await self.conn.execute(for_postgres(statement), tuple(params))
        return list(await cursor.fetchall())

    async def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        cursor = await self.conn.execute(for_postgres(statement), tuple(params))
        return cursor.rowcount


def _utcnow() -> datetime:
    return datetime.now(UTC)

"""The shared store: PostgreSQL through psycopg 3 and its connection pool.

Several service and worker processes, on one machine or several, use one database:

- a report is one transaction (report, outbox rows, audit events, NOTIFY), committed with
  ``synchronous_commit`` on, so a receipt is shown only for a report on disk;
- a form token is used once because ``reports.token_id`` is UNIQUE: the second submit of
  a form, to any process, finds the first report (``ON CONFLICT DO NOTHING``);
- workers claim outbox rows with ``SELECT … FOR UPDATE SKIP LOCKED``, so two never take
  the same row and none waits for another's;
- the commit NOTIFYs ``outreach_reports``; every worker LISTENs, and claims at once.

Why psycopg 3 rather than asyncpg: it ships type hints (mypy --strict checks this module),
its pool checks a connection before lending it (after a PostgreSQL restart the service
recovers without serving errors from dead connections), and one library has both the
asynchronous API the service uses and a synchronous one for scripts and tests. Its speed is
not the limit: a report waits on the commit's fsync, not on the driver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool

from form_service.logs import log_event
from form_service.storage import (
    AuditEvent,
    Delivery,
    NewReport,
    ReferenceTaken,
    ReportStatus,
    SaveResult,
    StoreUnavailable,
)
from form_service.storage.migrations import MIGRATIONS, Migration
from form_service.storage.rows import (
    AUDIT_INSERT,
    DELIVERY_COLUMNS,
    OUTBOX_INSERT,
    REPORT_STATUS,
    audit_row,
    delivery,
    new_report_rows,
)
from form_service.storage.rows import sql as sql_for
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


_AUDIT = sql_for(AUDIT_INSERT, "postgres")


_EXPIRED_LEASES = "status = 'sending' AND claimed_until < %s"
_DUE_PENDING = "status = 'pending' AND next_attempt_at <= %s ORDER BY next_attempt_at"
_CLAIM = (
    "WITH due AS (SELECT id FROM outbox WHERE {due} LIMIT %s FOR UPDATE SKIP LOCKED)"
    " UPDATE outbox o SET status = 'sending', claimed_until = %s, attempts = o.attempts + 1"
    " FROM due, reports r WHERE o.id = due.id AND r.id = o.report_id"
    " RETURNING {columns}"
)


async def _insert_report(conn: Connection, report: NewReport) -> int | None:
    """The new report's id, or None when a report with the same form token exists."""
    at = minute_iso(report.created_at)
    cursor = await conn.execute(
        "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
        " content_age, urgent) VALUES (%s, %s, %s, 'received', %s, %s, %s)"
        " ON CONFLICT (token_id) DO NOTHING RETURNING id",
        (
            report.report_ref,
            report.receipt_hash,
            report.token_id,
            at,
            report.content_age,
            int(report.urgent),
        ),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    report_id = int(row[0])
    outbox, audit = new_report_rows(report, report_id, at, minute_start_stamp(report.created_at))
    async with conn.cursor() as many:
        await many.executemany(sql_for(OUTBOX_INSERT, "postgres"), outbox)
        await many.executemany(_AUDIT, audit)
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

    async def save_report(self, report: NewReport) -> SaveResult:
        try:
            async with self._connection() as conn, conn.transaction():
                report_id = await _insert_report(conn, report)
                if report_id is None:
                    # The form was sent before, to this process or another: its report.
                    cursor = await conn.execute(
                        "SELECT report_ref, receipt_hash FROM reports WHERE token_id = %s",
                        (report.token_id,),
                    )
                    row = await cursor.fetchone()
                    if row is None:
                        raise StoreUnavailable("the earlier report of this form vanished")
                    return SaveResult(False, row[0], row[1])
                # Delivered at commit, to every process that LISTENs.
                await conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))
        except errors.UniqueViolation as error:
            if error.diag.constraint_name == _REF_CONSTRAINT:
                raise ReferenceTaken from None
            raise
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return SaveResult(True, report.report_ref, report.receipt_hash)

    async def report_status(self, receipt_hash: str) -> ReportStatus | None:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(sql_for(REPORT_STATUS, "postgres"), (receipt_hash,))
                row = await cursor.fetchone()
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return ReportStatus(row[0]) if row else None

    async def mark_reviewed(self, report_ref: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE reports SET status = 'reviewed' WHERE report_ref = %s", (report_ref,)
            )

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
    ) -> list[Delivery]:
        at = stamp(now)
        until = stamp(now + timedelta(seconds=lease_seconds))
        # As on SQLite: expired leases first, then due rows in index order, each with a
        # query that stops at the limit instead of sorting a whole backlog.
        rows: list[tuple[Any, ...]] = []
        async with self._connection() as conn, conn.transaction():
            for due in (_EXPIRED_LEASES, _DUE_PENDING):
                if len(rows) < limit:
                    query = _CLAIM.format(due=due, columns=DELIVERY_COLUMNS)
                    cursor = await conn.execute(query, (at, limit - len(rows), until))
                    rows += await cursor.fetchall()
        return [delivery(row) for row in rows]

    async def mark_delivered(self, delivery_id: str) -> None:
        # To the minute, as the report: a first delivery follows the report by milliseconds.
        now = self._clock()
        at, delivered = minute_iso(now), minute_start_stamp(now)
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE outbox o SET status = 'delivered', payload = NULL,"
                " claimed_until = NULL, delivered_at = %s"
                " FROM reports r WHERE o.id = %s AND o.status != 'delivered'"
                " AND r.id = o.report_id"
                " RETURNING o.report_id, r.report_ref, o.partner_id, o.rule_id,"
                " o.agreement_id, o.is_intake",
                (delivered, delivery_id),
            )
            row = await cursor.fetchone()
            if row is None:
                return
            report_id, ref, partner_id, rule_id, agreement_id, is_intake = row
            if is_intake:
                await conn.execute(
                    "UPDATE reports SET status = 'delivered' WHERE id = %s AND status = 'received'",
                    (report_id,),
                )
            await conn.execute(
                _AUDIT,
                audit_row(
                    at,
                    ref,
                    "delivered",
                    partner_id=partner_id,
                    rule_id=rule_id,
                    agreement_id=agreement_id,
                    outcome="delivered",
                ),
            )

    async def mark_failed(
        self, delivery_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        at = minute_iso(self._clock())
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT r.report_ref, o.partner_id, o.rule_id, o.agreement_id"
                " FROM outbox o JOIN reports r ON r.id = o.report_id WHERE o.id = %s"
                " FOR UPDATE OF o",
                (delivery_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return
            await conn.execute(
                "UPDATE outbox SET status = %s, next_attempt_at = %s, claimed_until = NULL,"
                " last_error = %s WHERE id = %s AND status != 'delivered'",
                ("dead" if dead else "pending", stamp(next_attempt_at), error[:500], delivery_id),
            )
            who = dict(zip(("partner_id", "rule_id", "agreement_id"), row[1:], strict=True))
            events = [audit_row(at, row[0], "delivery_attempt", outcome="failed", **who)]
            if dead:
                events.append(audit_row(at, row[0], "dead", outcome="gave up", **who))
            async with conn.cursor() as many:
                await many.executemany(_AUDIT, events)

    # -- housekeeping (the same chores as delivery/housekeeping.py does on SQLite) ---------

    async def checkpoint(self) -> bool:
        """Nothing to do: PostgreSQL's WAL and (auto)vacuum need no help from the worker."""
        return True

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET next_attempt_at = %s WHERE partner_id = %s"
                " AND status = 'pending' AND next_attempt_at > %s",
                (stamp(now), partner_id, stamp(now)),
            )
            return cursor.rowcount

    async def purge(self, now: datetime, days: int) -> list[str]:
        """Delete reports older than *days* with their outbox rows; the audit trail stays."""
        cutoff = minute_iso(now - timedelta(days=days))
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "DELETE FROM reports WHERE created_at < %s RETURNING id, report_ref", (cutoff,)
            )
            refs = [ref for _, ref in sorted(await cursor.fetchall())]
            async with conn.cursor() as many:
                await many.executemany(
                    "INSERT INTO audit_events (at, report_ref, event, outcome)"
                    " VALUES (%s, %s, 'purged', %s)",
                    [(minute_iso(now), ref, f"older than {days} days") for ref in refs],
                )
        return refs

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]:
        ref = report_ref or None
        first = since.strftime("%Y-%m-%dT%H:%M") if since else None
        last = until.strftime("%Y-%m-%dT%H:%M") if until else None
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT at, report_ref, event, partner_id, rule_id, agreement_id, fields, outcome"
                " FROM audit_events WHERE (%(ref)s::text IS NULL OR report_ref = %(ref)s)"
                " AND (%(first)s::text IS NULL OR at >= %(first)s)"
                " AND (%(last)s::text IS NULL OR at < %(last)s) ORDER BY id",
                {"ref": ref, "first": first, "last": last},
            )
            rows = await cursor.fetchall()
        return [AuditEvent(*row) for row in rows]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTx]:
        try:
            async with self._connection() as conn, conn.transaction():
                yield _PostgresTx(conn)
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error


class _PostgresTx:
    dialect: Literal["postgres"] = "postgres"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = await self.conn.execute(sql_for(statement, "postgres"), tuple(params))
        return list(await cursor.fetchall())

    async def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        cursor = await self.conn.execute(sql_for(statement, "postgres"), tuple(params))
        return cursor.rowcount


def _utcnow() -> datetime:
    return datetime.now(UTC)

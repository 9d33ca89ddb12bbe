"""The report store: one interface, two databases (SQLite embedded, PostgreSQL shared).

Everything a report needs is written in one transaction by ``save_report``; the delivery
worker uses the claim/mark methods and the chores (checkpoint, retry, purge); the operator's
commands read the audit trail. Callers never ask which database is behind the store. Times
are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from form_service.private_files import private_folder
from form_service.settings import Settings, SettingsError

T = TypeVar("T")


class ReferenceTaken(Exception):
    """The randomly drawn public reference is already used; draw another and save again."""


class StoreUnavailable(Exception):
    """The database could not be reached, or refused the write (read-only, disk full).

    Nothing new was committed, as far as this process knows. A commit whose answer was lost
    may still have gone through: the same form token sent again then finds that report.
    """


class ReportStatus(StrEnum):
    """What the tipster's status page says: the inbox's stage, never its outcome or notes."""

    received = "received"
    delivered = "delivered"
    reviewed = "reviewed"
    """Someone on the team acknowledged or triaged it: "being looked at"."""
    closed = "closed"


@dataclass(frozen=True)
class OutboxEntry:
    """One partner's copy of a new report, waiting for delivery."""

    delivery_id: str
    partner_id: str
    rule_id: str
    agreement_id: str
    payload: str
    is_intake: bool
    fields: tuple[str, ...]
    """Names of the fields in the payload, for the audit log."""
    hold_seconds: int = 0
    """How long after the report's minute the copy is first due (the partner's random hold)."""


@dataclass(frozen=True)
class PartnerShare:
    """A partner's part in a new report: held for review, or shared at once.

    ``view_age`` is what the partner's agreement lets it see, sealed to the key of the
    partner's own staff users (None while none has enrolled); it serves their inbox."""

    partner_id: str
    rule_id: str
    held: bool
    view_age: bytes | None = None


@dataclass(frozen=True)
class NewReport:
    report_ref: str
    receipt_hash: str
    token_id: str
    created_at: datetime
    content_age: bytes
    outbox: tuple[OutboxEntry, ...]
    urgent: bool = False
    """The tipster said someone may be in danger now: first in the team's inbox."""
    shares: tuple[PartnerShare, ...] = ()
    """Every partner but the intake team: held for review, or shared with the outbox."""
    categories: tuple[str, str, str] | None = None
    """(area, setting, concern) ids, kept in the clear for the program figures."""
    receipt_sealed: bytes | None = None
    """The receipt code, sealed under the form token's id (``token_id`` is only its hash)."""
    thread_recipient: str | None = None
    """The public half of the report's conversation key."""
    thread_sealed: bytes | None = None
    """Its secret half, sealed under a key only the receipt code gives."""


@dataclass(frozen=True)
class SaveResult:
    created: bool
    """False when a report with the same form token already existed (a double submit)."""
    report_ref: str
    receipt_hash: str
    receipt_sealed: bytes | None = None
    """The code sealed under the form token's id: a double submit of the form opens it."""


@dataclass(frozen=True)
class ClaimedDelivery:
    """An outbox row claimed by the delivery worker."""

    delivery_id: str
    report_ref: str
    partner_id: str
    rule_id: str
    agreement_id: str
    payload: str | None
    attempts: int
    is_intake: bool
    urgent: bool = False
    """The report says someone may be in danger now: the server's fact, for alerts to the
    operator. What the partner may know of it is in the payload (form_service/sharing.py)."""


@dataclass(frozen=True)
class AuditEvent:
    at: str
    report_ref: str
    event: str
    partner_id: str | None
    rule_id: str | None
    agreement_id: str | None
    fields: str | None
    outcome: str | None


Dialect = Literal["sqlite", "postgres"]


Step = tuple[str, tuple[Any, ...]]
"""A shared statement (``?`` placeholders) and its values."""


class Reads(Protocol):
    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of INSERT/UPDATE ... RETURNING)."""


class Tx(Reads, Protocol):
    """One transaction of the team's side: statements written once, with ``?`` placeholders.

    The staff pages are few and slow next to reports, so their statements run one by one
    through this small interface (storage/staff.py) instead of a method per query per
    backend; both backends implement it over their own connections."""

    @property
    def dialect(self) -> Dialect: ...

    async def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Execute a statement; the number of rows it changed."""


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the database answers."""

    async def save_report(
        self, report: NewReport, files: Iterable[Step] = (), size: int = 0
    ) -> SaveResult:
        """Store report, outbox rows and audit events in one durable transaction; with
        them, when the report is new, the *files* sent with it (steps, as for ``write``,
        of about *size* bytes): a receipt then waits for one commit, not two. The steps
        are not begun when the report's reference is taken (ReferenceTaken).

        Raises StoreUnavailable when the database is down, read-only or full."""

    async def listen_for_reports(self, wakeup: asyncio.Event) -> None:
        """Set *wakeup* whenever any process commits a report, until cancelled.

        PostgreSQL: LISTEN/NOTIFY. SQLite: a named pipe per listener beside the database
        file, written to by each process that commits (storage/sqlite_wakeups.py)."""

    async def report_status(self, receipt_hash: str) -> ReportStatus | None:
        """The report's status, None for an unknown hash; StoreUnavailable when down."""

    async def mark_reviewed(self, report_ref: str) -> None: ...

    async def claim_due_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        """Pending rows that are due, and rows whose earlier claim expired, leased to the caller."""

    async def renew_leases(
        self, held: Sequence[ClaimedDelivery], now: datetime, lease_seconds: float
    ) -> set[str]:
        """Lease again, until *lease_seconds* from *now*, each row of *held* that its claim
        still holds: not delivered, failed or taken over by another worker since. The ids of
        the rows renewed."""

    async def mark_delivered(self, delivery_id: str) -> None:
        """Record delivery, wipe the plaintext payload, and advance the report's status."""

    async def mark_failed(
        self, delivery_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Record a failed attempt; retry at next_attempt_at, or give up when dead."""

    # -- chores and the operator's queries -----------------------------------------------

    def exists(self) -> bool:
        """False for a database never created (SQLite: no file yet), where a command that
        only reads or removes has nothing to do and should create nothing."""

    async def checkpoint(self) -> bool:
        """Make wiped payloads unrecoverable from the database files; False if not yet."""

    async def retry_partner_now(self, partner_id: str, now: datetime) -> int:
        """Make a partner's waiting rows due: its server answered again after failures."""

    async def purge(self, now: datetime, days: int) -> list[str]:
        """Delete reports older than *days* with their outbox rows; the references purged.
        The audit trail stays, with a 'purged' event for each."""

    async def events(
        self, report_ref: str | None, since: datetime | None, until: datetime | None
    ) -> list[AuditEvent]:
        """The audit trail in order, of one report and/or from *since* to before *until*."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction for the team's side, committed when the block ends without error.

        Raises StoreUnavailable when the database is down."""

    # -- a tipster's files, beside the reports rather than behind the team's side ------

    async def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a SELECT over what is committed, outside any transaction.

        Raises StoreUnavailable when the database is down."""

    async def write(self, steps: Iterable[Step], size: int = 0) -> None:
        """Run *steps* in one durable transaction, as reports are written: SQLite adds them
        to the reports' group commit (*size*, about the bytes they write, bounds a batch),
        PostgreSQL runs them on a pooled connection. Steps are taken from *steps* as they
        run, so a file's pieces can be read one at a time.

        Raises StoreUnavailable when the database is down, read-only or full."""


def run_on_store(store: Store, work: Callable[[Store], Awaitable[T]]) -> T:
    """*work* on *store*, opened for it alone and closed after: for a one-off command."""

    async def run() -> T:
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(settings: Settings, *, connections: int | None = None) -> Store:
    """The configured store, not yet opened; *connections* caps a PostgreSQL pool (a
    one-off command needs one). The PostgreSQL driver is imported only when configured.

    Every command that uses the store starts here, so here the data dir is made private
    (form_service/private_files.py), also when an older version or a site build made it."""
    private_folder(settings.data_dir)
    url = settings.database_url
    if is_postgres_url(url):
        from form_service.storage.postgres import PostgresStore

        return PostgresStore(
            url,
            pool_size=connections or settings.database_pool_size,
            timeout=settings.database_timeout_seconds,
        )
    path = sqlite_path(url)
    if path is None:
        raise SettingsError(
            "OUTREACH_DATABASE_URL: use sqlite:///<path> or postgresql://…, "
            f"not {url.split(':', 1)[0]!r}"
        )
    from form_service.storage.sqlite import SqliteStore

    return SqliteStore(path)

"""What the operator's commands do: purge expired reports, print the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from form_service.delivery.housekeeping import (
    AuditEvent,
    Housekeeping,
    SqliteHousekeeping,
    audit_events,
    purge_expired,
)
from form_service.settings import Settings, SettingsError
from form_service.storage import is_postgres_url, sqlite_path

T = TypeVar("T")


def _on_postgres(settings: Settings, work: Callable[[Housekeeping], Awaitable[T]]) -> T:
    from form_service.storage.postgres import PostgresStore

    async def run() -> T:
        store = PostgresStore(
            settings.database_url, pool_size=1, timeout=settings.database_timeout_seconds
        )
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _housekeeping(settings: Settings) -> SqliteHousekeeping | None:
    path = sqlite_path(settings.database_url)
    if path is None:
        raise SettingsError("OUTREACH_DATABASE_URL: use sqlite:///<path> or postgresql://…")
    return SqliteHousekeeping(path) if path.exists() else None


def purge_now(settings: Settings, now: datetime | None = None) -> list[str]:
    """Remove reports past the profile's retention period; the references purged."""
    days = settings.profile.profile.retention.days
    moment = now or datetime.now(UTC)
    if is_postgres_url(settings.database_url):
        return _on_postgres(settings, lambda store: store.purge(moment, days))
    housekeeping = _housekeeping(settings)
    if housekeeping is None:
        return []
    try:
        return housekeeping.run(lambda conn: purge_expired(conn, moment, days))
    finally:
        housekeeping.close()


def audit_trail(
    settings: Settings, report_ref: str | None, since: date | None, until: date | None
) -> list[AuditEvent]:
    """Events of one report and/or between two dates (both days included)."""
    first = datetime.combine(since, time(), UTC) if since else None
    after = datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None
    if is_postgres_url(settings.database_url):
        return _on_postgres(settings, lambda store: store.events(report_ref, first, after))
    housekeeping = _housekeeping(settings)
    if housekeeping is None:
        return []
    try:
        return housekeeping.run(lambda conn: audit_events(conn, report_ref, first, after))
    finally:
        housekeeping.close()


def audit_line(event: AuditEvent) -> str:
    parts = [event.at, f"{event.event:<16}", event.report_ref]
    for name in ("partner_id", "rule_id", "agreement_id", "fields", "outcome"):
        value = getattr(event, name)
        if value:
            parts.append(f"{name.removesuffix('_id')}={value}")
    return "  ".join(parts)

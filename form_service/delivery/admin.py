"""What the operator's commands do: purge expired reports, print the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from form_service.delivery.housekeeping import (
    AuditEvent,
    SqliteHousekeeping,
    audit_events,
    purge_expired,
)
from form_service.settings import Settings, SettingsError
from form_service.storage import sqlite_path


def _housekeeping(settings: Settings) -> SqliteHousekeeping | None:
    path = sqlite_path(settings.database_url)
    if path is None:
        raise SettingsError("OUTREACH_DATABASE_URL: only sqlite:///<path> is supported so far")
    return SqliteHousekeeping(path) if path.exists() else None


def purge_now(settings: Settings, now: datetime | None = None) -> list[str]:
    """Remove reports past the profile's retention period; the references purged."""
    housekeeping = _housekeeping(settings)
    if housekeeping is None:
        return []
    days = settings.profile.profile.retention.days
    moment = now or datetime.now(UTC)
    try:
        return housekeeping.run(lambda conn: purge_expired(conn, moment, days))
    finally:
        housekeeping.close()


def audit_trail(
    settings: Settings, report_ref: str | None, since: date | None, until: date | None
) -> list[AuditEvent]:
    """Events of one report and/or between two dates (both days included)."""
    housekeeping = _housekeeping(settings)
    if housekeeping is None:
        return []
    first = datetime.combine(since, time(), UTC) if since else None
    after = datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None
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

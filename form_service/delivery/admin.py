"""What the operator's commands do: purge expired reports and delivered mail, print the
audit trail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from form_service.delivery import maildir
from form_service.delivery.alerts import ALERT_FOLDER
from form_service.delivery.channel import maildir_root
from form_service.settings import Settings
from form_service.storage import AuditEvent, Store, open_store, run_on_store

T = TypeVar("T")


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[list[T]]]) -> list[T]:
    """*work* on the configured store, opened for it alone; nothing for a database never
    created, which is then not created either."""
    store = open_store(settings, connections=1)
    return run_on_store(store, work) if store.exists() else []


def purge_now(settings: Settings, now: datetime | None = None) -> list[str]:
    """Remove reports past the profile's retention period; the references purged."""
    days = settings.profile.profile.retention.days
    moment = now or datetime.now(UTC)
    return _with_store(settings, lambda store: store.purge(moment, days))


def purge_mail_now(settings: Settings, now: datetime | None = None) -> int:
    """Delete the messages the kit delivered into Maildir folders (the profile's partners'
    and the alerts folder) past the retention period; how many."""
    profile = settings.profile.profile
    root = maildir_root(settings.data_dir)
    folders = [
        root / partner.delivery.maildir.folder
        for partner in profile.partners
        if partner.delivery.maildir is not None
    ]
    cutoff = (now or datetime.now(UTC)) - timedelta(days=profile.retention.days)
    return maildir.purge([*folders, root / ALERT_FOLDER], cutoff.timestamp())


def audit_trail(
    settings: Settings, report_ref: str | None, since: date | None, until: date | None
) -> list[AuditEvent]:
    """Events of one report and/or between two dates (both days included)."""
    first = datetime.combine(since, time(), UTC) if since else None
    after = datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None
    return _with_store(settings, lambda store: store.events(report_ref, first, after))


def audit_line(event: AuditEvent) -> str:
    parts = [event.at, f"{event.event:<16}", event.report_ref]
    for name in ("partner_id", "rule_id", "agreement_id", "fields", "outcome"):
        value = getattr(event, name)
        if value:
            parts.append(f"{name.removesuffix('_id')}={value}")
    return "  ".join(parts)

"""What ``outreach staff`` and ``outreach audit --verify`` do, each on a store of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urljoin

from form_service.settings import Settings
from form_service.staff import accounts
from form_service.staff import figures as program
from form_service.storage import Store, open_store, run_on_store
from form_service.storage import staff as records
from form_service.storage.staff import StaffUser
from outreach.addresses import service_address

T = TypeVar("T")


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    return run_on_store(open_store(settings, connections=1), work)


def enrolment_link(settings: Settings, secret: str) -> str:
    return urljoin(service_address(settings.profile.profile.agency), f"/staff/enrol/{secret}")


def add(settings: Settings, email: str, role: str) -> tuple[StaffUser, str]:
    partners = {p.id for p in settings.profile.profile.partners}
    role = accounts.check_role(role, partners)
    now = datetime.now(UTC)
    user, secret = _with_store(settings, lambda s: accounts.add_user(s, email, role, now))
    return user, enrolment_link(settings, secret)


def reset(settings: Settings, email: str) -> tuple[StaffUser, str]:
    now = datetime.now(UTC)
    user, secret = _with_store(settings, lambda s: accounts.reset_user(s, email, now))
    return user, enrolment_link(settings, secret)


def disable(settings: Settings, email: str) -> StaffUser:
    now = datetime.now(UTC)
    return _with_store(settings, lambda s: accounts.disable_user(s, email, now))


def list_users(settings: Settings) -> list[StaffUser]:
    return _with_store(settings, accounts.list_users)


def verify_audit(settings: Settings) -> tuple[int, list[str]]:
    """(events checked, problems): a changed, removed or inserted row is a problem."""

    async def verify(store: Store) -> tuple[int, list[str]]:
        async with store.transaction() as tx:
            return await records.event_count(tx), await records.verify_chain(tx)

    return _with_store(settings, verify)


def figures(settings: Settings, months: int, output: str) -> program.Figures:
    """The program figures of the last *months* months, their export on the audit trail.

    A database never created holds no reports: its figures are all zero, and it is not
    created for them."""
    profile = settings.profile.profile
    now = datetime.now(UTC)
    if not open_store(settings, connections=1).exists():
        return program.tabulate([], profile, program.month_keys(now, months))

    async def export(store: Store) -> program.Figures:
        async with store.transaction() as tx:
            found = await program.read_figures(tx, profile, now, months)
            await records.append_event(tx, "command line", "figures_exported", now, detail=output)
        return found

    return _with_store(settings, export)

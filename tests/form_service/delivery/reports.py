"""Reports stored through the real intake path and store (SQLite or PostgreSQL), for the
worker tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.retry import RetryPolicy
from form_service.delivery.worker import DeliveryWorker, WorkerOptions
from form_service.intake import prepare_report
from form_service.report import Report
from form_service.storage import NewReport, Store
from outreach.profile import Partner, Profile
from tests.databases import Database
from tests.form_service.delivery.factory import partner
from tests.form_service.samples import REPORT

FAST = WorkerOptions(
    poll_seconds=0.05,
    lease_seconds=30,
    retry=RetryPolicy(base_seconds=0.05, cap_seconds=0.2, max_attempts=50),
)


def with_partner(profile: Profile, partner_id: str, **delivery: Any) -> Profile:
    """*profile* with one partner's delivery settings replaced."""
    partners: list[Partner] = [
        partner(p, **delivery) if p.id == partner_id else p for p in profile.partners
    ]
    return profile.model_copy(update={"partners": partners})


async def submit(
    store: Store, profile: Profile, filed: Report = REPORT, now: datetime | None = None
) -> NewReport:
    new, _ = prepare_report(filed, profile, str(uuid.uuid4()), "secret", now or datetime.now(UTC))
    await store.save_report(new)
    return new


async def open_store(database: Database) -> Store:
    return await database.open_store()


def make_worker(store: Store, profile: Profile, data_dir: Path, **kwargs: Any) -> DeliveryWorker:
    settings = DeliverySettings(
        profile=profile,
        data_dir=data_dir,
        environ=kwargs.pop("environ", {}),
        tls_context=kwargs.pop("tls_context", None),
        timeout=kwargs.pop("timeout", 5),
    )
    kwargs.setdefault("options", FAST)
    return DeliveryWorker(store, settings, **kwargs)


async def run_until(
    worker: DeliveryWorker, done: Callable[[], bool], timeout: float = 20.0
) -> None:
    """Run the worker until *done* holds; fail the test if it does not within *timeout*."""
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def rows(database: Database, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return database.rows(sql, *args)


def outbox(database: Database) -> dict[str, tuple[Any, ...]]:
    """partner_id -> (status, attempts, payload, last_error) of every outbox row."""
    found = rows(database, "SELECT partner_id, status, attempts, payload, last_error FROM outbox")
    return {row[0]: row[1:] for row in found}

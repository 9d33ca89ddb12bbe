"""What the request handlers and the delivery worker share while the app runs.

The lifespan opens the store and yields ``{"service": Service}`` as Starlette lifespan
state, so handlers read it from ``request.state.service``. ``wakeup`` is an asyncio.Event
set after every committed report: the delivery worker waits on it, clears it, then claims
due outbox rows (and also claims on a timer, for retries and rows left by a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import cast

from starlette.requests import Request

from form_service.logs import MinuteTally
from form_service.pages import Pages
from form_service.ratelimit import LookupLimiter, ReportLimiter
from form_service.settings import Settings
from form_service.storage import Store, StoreUnavailable
from form_service.storage import staff as staff_records
from form_service.storage.staff import INTAKE_GROUP
from form_service.tokens import FormTokens

TEAM_KEY_SECONDS = 5


@dataclass
class Service:
    settings: Settings
    store: Store
    tokens: FormTokens
    limiter: LookupLimiter
    pages: Pages
    report_limiter: ReportLimiter
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    reports_in_flight: int = 0
    """Report submissions being handled now (the delivery worker gives way while any are)."""
    stored: MinuteTally = field(default_factory=lambda: MinuteTally("reports_stored"))
    """Stored reports, logged as a count per minute (never a line per report)."""
    receipt_pages: dict[tuple[str, bool], str] = field(default_factory=dict)
    """Receipt pages rendered once per (language, danger now), the code put in per report."""
    team_recipients: tuple[str, ...] = ()
    """The intake team's age recipient once its first member enrolled: new reports are
    sealed to it beside the archive key. Read at start, then every few seconds until found."""

    @classmethod
    def build(cls, settings: Settings, store: Store) -> Service:
        return cls(
            settings=settings,
            store=store,
            tokens=FormTokens(
                settings.secret_keys, settings.min_fill_seconds, settings.max_token_age_seconds
            ),
            limiter=LookupLimiter(
                settings.status_client_limit,
                settings.status_global_limit,
                settings.status_window_seconds,
            ),
            pages=Pages(settings.profile),
            report_limiter=ReportLimiter(
                settings.report_client_burst,
                settings.report_client_per_hour,
                settings.report_global_per_minute,
                settings.report_surge_per_minute,
                client_surge=settings.report_client_surge,
            ),
        )

    async def read_team_key(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            async with self.store.transaction() as tx:
                recipient = await staff_records.group_recipient(tx, INTAKE_GROUP)
            self.team_recipients = (recipient,) if recipient else ()

    async def follow_team_key(self) -> None:
        """Keep ``team_recipients`` current: the key is made once, when the first intake
        user enrols (in this process or another), and never changes after."""
        while not self.team_recipients:
            await asyncio.sleep(TEAM_KEY_SECONDS)
            await self.read_team_key()

    def language(self, request: Request) -> str | None:
        """The page language from the URL, or None for a prefix that is no profile language."""
        profile = self.settings.profile.profile
        lang = request.path_params.get("lang", profile.default_language)
        return lang if lang in profile.languages else None


def service_of(request: Request) -> Service:
    return cast(Service, request.state.service)

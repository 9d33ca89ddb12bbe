"""What the request handlers and the delivery worker share while the app runs.

The lifespan opens the store and yields ``{"service": Service}`` as Starlette lifespan
state, so handlers read it from ``request.state.service``. ``wakeup`` is an asyncio.Event
set after every committed report: the delivery worker waits on it, clears it, then claims
due outbox rows (and also claims on a timer, for retries and rows left by a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request

from form_service.intake import Readers
from form_service.logs import MinuteTallies, MinuteTally
from form_service.pages import Pages
from form_service.ratelimit import LookupLimiter, ReportLimiter
from form_service.settings import Settings
from form_service.storage import Store, StoreUnavailable
from form_service.storage import staff as staff_records
from form_service.storage.staff import INTAKE_GROUP, PARTNER_PREFIX
from form_service.thread_sessions import ThreadSessions
from form_service.tokens import FormTokens

STAFF_KEYS_SECONDS = 5
_LULL_LOOK_SECONDS = 0.05
LULL_QUIET_SECONDS = 1.0
"""How long no files must have been arriving for a lull: tipsters sending at about the
same moment (a class told of one post) are one burst, not several with gaps between."""


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
    files_in_flight: int = 0
    """Tipsters' requests with files being received or stored now (cleaning waits for none)."""
    files_quiet_since: float = float("-inf")
    """When (time.monotonic) the last request with files ended."""
    stored: MinuteTally = field(default_factory=lambda: MinuteTally("reports_stored"))
    """Stored reports, logged as a count per minute (never a line per report)."""
    events: MinuteTallies = field(default_factory=MinuteTallies)
    """Everything else the form and status pages log, counted per minute as well."""
    receipt_pages: dict[tuple[str, bool, tuple[str, ...]], str] = field(default_factory=dict)
    """Receipt pages rendered once per (language, danger now, kinds of the files), the code
    put in per report."""
    form_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The report form's choices and fixed texts, made once per language."""
    threads: ThreadSessions = field(default_factory=ThreadSessions)
    """Tipsters' open conversation pages: a single-use token each, in memory only."""
    readers: Readers = field(default_factory=Readers)
    """The staff keys new reports are sealed to: the intake team's and each partner's, once
    their first user enrolled. Read at start, then every few seconds."""

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

    async def read_staff_keys(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            async with self.store.transaction() as tx:
                groups = await staff_records.group_recipients(tx)
            team = groups.get(INTAKE_GROUP)
            partners = {
                name.removeprefix(PARTNER_PREFIX): recipient
                for name, recipient in groups.items()
                if name.startswith(PARTNER_PREFIX)
            }
            self.readers = Readers((team,) if team else (), partners)

    async def follow_staff_keys(self) -> None:
        """Keep ``readers`` current: a team key is made when the first user of the intake
        team or of a partner enrols, in this process or another, and never changes after."""
        while True:
            await asyncio.sleep(STAFF_KEYS_SECONDS)
            await self.read_staff_keys()

    @contextlib.contextmanager
    def receiving_files(self) -> Iterator[None]:
        """Counts a request with files while its files arrive and are stored."""
        self.files_in_flight += 1
        try:
            yield
        finally:
            self.files_in_flight -= 1
            self.files_quiet_since = time.monotonic()

    async def lull(self, at_most: float) -> None:
        """Return once no tipster's files have been arriving for LULL_QUIET_SECONDS, or
        after *at_most* seconds: work that can wait (cleaning photos) gives way to tipsters
        waiting for a receipt."""
        deadline = time.monotonic() + at_most
        while time.monotonic() < deadline and (
            self.files_in_flight or time.monotonic() - self.files_quiet_since < LULL_QUIET_SECONDS
        ):
            await asyncio.sleep(_LULL_LOOK_SECONDS)

    def language(self, request: Request) -> str | None:
        """The page language from the URL, or None for a prefix that is no profile language."""
        profile = self.settings.profile.profile
        lang = request.path_params.get("lang", profile.default_language)
        return lang if lang in profile.languages else None


def service_of(request: Request) -> Service:
    return cast(Service, request.state.service)

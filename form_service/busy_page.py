"""The service's own page for a request the server is too busy to take.

The HTTP server (form_service.connection_cap) does not answer such a request itself: it
passes it to the app marked with ``BUSY`` in its scope's extensions, and ``BusyPage``
answers it at once with the localized 503 page, before any route reads its body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from form_service.error_pages import busy_page
from form_service.logs import MinuteTally
from form_service.pages import Pages

BUSY = "outreach.busy"
"""The scope extension that marks a request the server is too busy for."""
RETRY_AFTER_SECONDS = 60


class BusyPage:
    def __init__(self, app: ASGIApp, pages: Pages) -> None:
        self.app = app
        self.pages = pages
        self.turned_away = MinuteTally("server_busy")
        """Requests answered with the busy page, logged as a count per minute."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or BUSY not in (scope.get("extensions") or {}):
            await self.app(scope, receive, send)
            return
        self.turned_away.add(requests=1)
        response = busy_page(self.pages, Request(scope))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

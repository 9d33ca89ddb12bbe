"""A warning, once, when requests carry forwarded-for headers but no proxy is trusted.

Behind a reverse proxy that is not named in ``OUTREACH_TRUSTED_PROXIES`` every visitor
seems to come from the proxy's address, so they all share one rate-limit budget. The
headers are ignored, as they must be (anyone can send them); the warning tells the
operator once per process, without any address or header value.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from form_service.logs import log_event

FORWARDED_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})


class ForwardedWarning:
    """Pure ASGI middleware: looks at request headers until it has warned, then not at all."""

    def __init__(self, app: ASGIApp, proxies_trusted: bool) -> None:
        self.app = app
        self.warned = proxies_trusted  # nothing to warn about

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.warned and scope["type"] == "http" and _forwarded(scope):
            self.warned = True
            log_event(
                "forwarded_headers_ignored",
                logging.WARNING,
                hint="set OUTREACH_TRUSTED_PROXIES to the reverse proxy's address",
            )
        await self.app(scope, receive, send)


def _forwarded(scope: Scope) -> bool:
    return any(name in FORWARDED_HEADERS for name, _ in scope["headers"])

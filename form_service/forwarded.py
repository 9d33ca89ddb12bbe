"""What the service takes from a reverse proxy's forwarded headers, and a warning when none
is trusted.

From a proxy named in ``OUTREACH_TRUSTED_PROXIES`` the service believes the scheme the
visitor used (``X-Forwarded-Proto``), so a redirect (a folder of the site, ``/privacy`` to
``/privacy/``) or an absolute URL stays on https. The visitor's address is read where it is
needed, for rate limits only (form_service.ratelimit), and never kept.

Behind a proxy that is not named every visitor seems to come from the proxy's address, so
they all share one rate-limit budget. The headers are ignored, as they must be (anyone can
send them); a warning tells the operator once per process, without any address or header
value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from form_service.logs import log_event
from form_service.ratelimit import is_trusted
from form_service.settings import IPNetwork

FORWARDED_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})
_SCHEMES = {b"https": "https", b"http": "http"}


class ForwardedHeaders:
    """Pure ASGI middleware: the scheme from a trusted proxy; else one warning if needed."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted_proxies)
        self.warned = bool(self.trusted)  # nothing to warn about

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.trusted:
                scope = self._with_scheme(scope)
            elif not self.warned and _forwarded(scope):
                self.warned = True
                log_event(
                    "forwarded_headers_ignored",
                    logging.WARNING,
                    hint="set OUTREACH_TRUSTED_PROXIES to the reverse proxy's address",
                )
        await self.app(scope, receive, send)

    def _with_scheme(self, scope: Scope) -> Scope:
        client = scope.get("client")
        if not client or not is_trusted(client[0], self.trusted):
            return scope
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                # The last value is the one the trusted proxy itself added.
                scheme = _SCHEMES.get(value.rsplit(b",", 1)[-1].strip().lower())
                return {**scope, "scheme": scheme} if scheme else scope
        return scope


def _forwarded(scope: Scope) -> bool:
    return any(name in FORWARDED_HEADERS for name, _ in scope["headers"])

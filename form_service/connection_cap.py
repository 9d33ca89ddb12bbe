"""A cap on the connections one client holds open, and the service's own page when full.

uvicorn's ``limit_concurrency`` counts every open connection alike and answers past it in
plain text: 513 idle connections from one address turned every tipster away with 503.
``ClientCapProtocol`` counts open connections per client instead, in each process:

- one client may hold ``per_client`` connections that count; a request on one more is
  answered with the busy page and its connection closed, and such connections do not count
  toward the server's limit, so idle connections from one address cannot fill it;
- past the server's limit (``limit_concurrency``: connections that count, or requests
  running) a request gets the service's own busy page (503, in the visitor's language)
  rather than uvicorn's plain text: it goes to the app marked ``BUSY``
  (form_service.busy_page), which answers before any route runs.

A client is known by an HMAC of its address (an IPv6 address by its /64) under a key that
lives in memory and is replaced every hour; its entry exists only while it has a
connection open. Trusted proxies speak for many clients and are not capped (the proxy
should cap its own clients).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.utils import get_remote_addr

from form_service.busy_page import BUSY
from form_service.http_limits import DeadlineH11Protocol
from form_service.ratelimit import client_id, is_trusted
from form_service.settings import IPNetwork, Settings

_ROTATE_SECONDS = 3600.0


class OpenConnections:
    """The connections of one process that count, by client (a keyed hash) and in all."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._key = secrets.token_bytes(32)
        self._by_client: dict[bytes, int] = {}
        self.counted = 0

    def open(self, address: str, per_client: int) -> bytes | None:
        """Count a new connection from *address*: its client, or None past *per_client*
        (0: no cap)."""
        if self._clock() - self._start >= _ROTATE_SECONDS:
            # Open connections keep the name they were counted under, so their close
            # still finds it; new ones are counted under the new key.
            self._start = self._clock()
            self._key = secrets.token_bytes(32)
        client = client_id(self._key, address)
        held = self._by_client.get(client, 0)
        if per_client and held >= per_client:
            return None
        self._by_client[client] = held + 1
        self.counted += 1
        return client

    def close(self, client: bytes) -> None:
        held = self._by_client.pop(client, 0) - 1
        if held > 0:
            self._by_client[client] = held
        self.counted -= 1

    def clients(self) -> int:
        return len(self._by_client)


OPEN = OpenConnections()
"""This process's connections: every connection of its server shares one count."""


class ClientCapProtocol(DeadlineH11Protocol):
    """uvicorn's h11 protocol with deadlines, a per-client cap and the service's busy page."""

    def __init__(
        self,
        *args: Any,
        per_client: int = 0,
        trusted_proxies: Sequence[IPNetwork] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._per_client = per_client
        self._trusted = tuple(trusted_proxies)
        # uvicorn's own check counts every connection and answers in plain text: ours below.
        self._limit: int | None = self.limit_concurrency
        self.limit_concurrency = None
        self._app = self.app
        self._client: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = get_remote_addr(transport)
        host = peer[0] if peer else ""
        cap = 0 if is_trusted(host, self._trusted) else self._per_client
        self._client = OPEN.open(host, cap)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._client is not None:
            OPEN.close(self._client)
            self._client = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        # A request parsed now runs self.app: the real app, or the busy page.
        self.app = self._busy if self._turned_away() else self._app
        super().handle_events()

    def _turned_away(self) -> bool:
        if self._client is None:
            return True
        limit = self._limit
        return limit is not None and (OPEN.counted >= limit or len(self.tasks) >= limit)

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {**(scope.get("extensions") or {}), BUSY: {}}
        await cast(ASGIApp, self._app)({**scope, "extensions": extensions}, receive, send)


def protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The protocol class uvicorn runs, with the cap and trusted proxies of *settings*.

    A partial, which uvicorn only ever calls like the class, and which reaches the
    processes of ``--workers N`` as it is (it pickles by reference)."""
    made = functools.partial(
        ClientCapProtocol,
        per_client=settings.connections_per_client,
        trusted_proxies=settings.trusted_proxies,
    )
    return cast(type[asyncio.Protocol], made)

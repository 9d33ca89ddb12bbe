"""Rate limits for status look-ups and reports, keyed without keeping who asked.

A client is known only by an HMAC of its address (an IPv6 address by its /64, the network
one host is given) under a key that lives in memory and is replaced, with every count, at
the end of each window: nothing here can be turned back into an address, and nothing
survives a window. Limits are generous per client because a whole school can share one
address; failed look-ups slow that client down instead. No budget is shared by everyone
where strangers could spend it: status look-ups have per-client limits only, and a report
costs the budget only once its form token has checked out. Memory is bounded by forgetting
the clients (and form tokens) seen longest ago, never by resetting everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from form_service.settings import IPNetwork

MAX_CLIENTS = 100_000
"""Clients (and form tokens) a limiter remembers; past this it forgets the oldest."""
_MAX_DELAY = 8.0
_IPV6_PREFIX = 64

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Admission:
    allowed: bool
    client: bytes
    delay: float
    """Seconds to wait before answering, grown by this client's earlier failures."""


@dataclass
class _Client:
    count: int = 0
    failures: int = 0


def client_key(address: str) -> str:
    """What a client is counted as: its IPv4 address, or the /64 network of its IPv6 one.

    An IPv6 host is usually given a whole /64, so keying on the full address would let one
    host be a new client with every request."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_PREFIX), strict=False))
    return str(ip)


def client_id(key: bytes, address: str) -> bytes:
    """A client's name for one key's lifetime: an HMAC of its key, never the address."""
    return hmac.new(key, client_key(address).encode(), hashlib.sha256).digest()[:16]


def _remember(table: OrderedDict[_K, _V], name: _K, value: _V, limit: int) -> _V:
    """Put *name* last in *table*, forgetting the oldest entries past *limit*."""
    table[name] = value
    table.move_to_end(name)
    while len(table) > limit:
        table.popitem(last=False)
    return value


class LookupLimiter:
    """Status look-ups by receipt code: ``client_limit`` per client per window, and a delay
    that grows with the client's failed look-ups. There is no limit for everyone together:
    strangers could spend it and lock every tipster out."""

    def __init__(
        self,
        client_limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._client_limit = client_limit
        self._window = window_seconds
        self._clock = clock
        self._max_clients = max_clients
        self._start = clock()
        self._key = secrets.token_bytes(32)
        self._clients: OrderedDict[bytes, _Client] = OrderedDict()

    def _roll(self) -> None:
        if self._clock() - self._start >= self._window:
            self._start = self._clock()
            self._key = secrets.token_bytes(32)
            self._clients = OrderedDict()

    def admit(self, address: str) -> Admission:
        self._roll()
        client = client_id(self._key, address)
        state = self._clients.get(client) or _Client()
        _remember(self._clients, client, state, self._max_clients)
        if state.count >= self._client_limit:
            return Admission(False, client, 0.0)
        state.count += 1
        delay = min(0.25 * 2 ** (state.failures - 1), _MAX_DELAY) if state.failures else 0.0
        return Admission(True, client, delay)

    def record_failure(self, client: bytes) -> None:
        state = self._clients.get(client)
        if state is not None:
            state.failures += 1


@dataclass(frozen=True)
class ReportAdmission:
    allowed: bool
    flood: bool
    """True while submissions overall run above the surge rate: reports stored now get flagged."""


@dataclass
class _Bucket:
    tokens: float
    at: float
    pace: float = 0.0
    """New forms sent lately: one more for each, drained at the client surge rate."""


CLIENT_SURGE_SECONDS = 10.0
"""The span over which a client's ``client_surge`` forms are counted, as a steady drain."""


class ReportLimiter:
    """Report submissions with a valid form token: a token bucket per client, a budget per
    minute for everyone, and a surge flag.

    Only reports whose form token checked out come here, so tokenless or forged requests
    cost nothing: to spend the budget a sender must load a form for each report and wait
    the minimum fill time. Each form token is counted once: sending the same form again
    (after fixing a field, or a replay) costs neither the budget nor the client's bucket
    again, and does not count toward the surge flag.

    Each client (an HMAC of its address under a key replaced every ``rotate_seconds``) may
    send ``burst`` reports at once, then ``per_hour`` an hour: enough for a school behind one
    address, while one flooder gets a few dozen reports an hour at most. Everyone together
    may send ``global_per_minute`` a minute, which protects the database. When forms sent,
    refused or not, pass ``surge_per_minute`` in this or the last minute, ``flood`` is set;
    also for a client sending faster than ``client_surge`` forms in ``CLIENT_SURGE_SECONDS``,
    so a script's burst from one address is flagged before the overall count notices it
    (0: no per-client flag). People who share an address (a class, an assembly) each fill
    in their own form and send far slower than that: thirty of them in ten minutes, or in
    one, are neither refused nor flagged.
    """

    def __init__(
        self,
        burst: int,
        per_hour: float,
        global_per_minute: int,
        surge_per_minute: int,
        rotate_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        client_surge: int = 3,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._burst = float(burst)
        self._client_surge = client_surge
        self._rate = per_hour / 3600.0
        self._global = global_per_minute
        self._surge = surge_per_minute
        self._rotate = rotate_seconds
        self._clock = clock
        self._max_clients = max_clients
        self._start = clock()
        self._key = secrets.token_bytes(32)
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()
        self._forms: OrderedDict[str, bool] = OrderedDict()
        """Form tokens seen lately, and whether each has been charged (admitted)."""
        self._minute = 0
        self._admitted = 0
        self._attempts = 0
        self._last_attempts = 0

    def _roll(self, now: float) -> None:
        if now - self._start >= self._rotate:
            self._start = now
            self._key = secrets.token_bytes(32)
            self._buckets = OrderedDict()
        minute = int(now // 60)
        if minute != self._minute:
            self._last_attempts = self._attempts if minute == self._minute + 1 else 0
            self._minute = minute
            self._admitted = 0
            self._attempts = 0

    def admit(self, address: str, form: str) -> ReportAdmission:
        """Admit a report from *address* sent with the checked form token *form*."""
        now = self._clock()
        self._roll(now)
        charged = self._forms.get(form)
        new = charged is None
        if charged is None:
            self._attempts += 1
            charged = _remember(self._forms, form, False, self._max_clients)
        flood = max(self._attempts, self._last_attempts) > self._surge
        client = client_id(self._key, address)
        bucket = self._buckets.get(client) or _Bucket(self._burst, now)
        _remember(self._buckets, client, bucket, self._max_clients)
        elapsed = now - bucket.at
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        bucket.at = now
        if self._client_surge:
            drain = self._client_surge / CLIENT_SURGE_SECONDS
            bucket.pace = max(0.0, bucket.pace - elapsed * drain) + new
            # Past client_surge forms at once (a little less: the level drains meanwhile).
            flood = flood or bucket.pace > self._client_surge
        if charged:
            return ReportAdmission(True, flood)
        if bucket.tokens < 1 or self._admitted >= self._global:
            return ReportAdmission(False, flood)
        bucket.tokens -= 1
        self._admitted += 1
        _remember(self._forms, form, True, self._max_clients)
        return ReportAdmission(True, flood)


def client_address(request: Request, trusted: Sequence[IPNetwork]) -> str:
    """The address to rate-limit on: the peer, or, behind a trusted proxy, who it speaks for."""
    peer = request.client.host if request.client else ""
    if not trusted or not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_trusted(hop, trusted):
            return hop
    return peer


def is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)

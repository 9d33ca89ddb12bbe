"""Rate limits for status look-ups, keyed without keeping who asked.

A client is known only by an HMAC of its address under a key that lives in memory and is
replaced, with every count, at the end of each window: nothing here can be turned back
into an address, and nothing survives a window. Limits are generous per client because a
whole school can share one address; failed look-ups slow that client down instead.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from form_service.settings import IPNetwork

_MAX_CLIENTS = 100_000
_MAX_DELAY = 8.0


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


def client_id(key: bytes, address: str) -> bytes:
    """A client's name for one key's lifetime: an HMAC of its address, never the address."""
    return hmac.new(key, address.encode(), hashlib.sha256).digest()[:16]


class LookupLimiter:
    def __init__(
        self,
        client_limit: int,
        global_limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_limit = client_limit
        self._global_limit = global_limit
        self._window = window_seconds
        self._clock = clock
        self._start = clock()
        self._key = secrets.token_bytes(32)
        self._clients: dict[bytes, _Client] = {}
        self._total = 0

    def _roll(self) -> None:
        if self._clock() - self._start >= self._window or len(self._clients) > _MAX_CLIENTS:
            self._start = self._clock()
            self._key = secrets.token_bytes(32)
            self._clients = {}
            self._total = 0

    def admit(self, address: str) -> Admission:
        self._roll()
        client = client_id(self._key, address)
        state = self._clients.setdefault(client, _Client())
        if state.count >= self._client_limit or self._total >= self._global_limit:
            return Admission(False, client, 0.0)
        state.count += 1
        self._total += 1
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


class ReportLimiter:
    """Report submissions: a token bucket per client, a budget per minute for everyone, and a
    surge flag.

    Each client (an HMAC of its address under a key replaced every ``rotate_seconds``) may
    send ``burst`` reports at once, then ``per_hour`` an hour: enough for a school behind one
    address, while one flooder gets a few dozen reports an hour at most. Everyone together
    may send ``global_per_minute`` a minute, which protects the database. When submissions,
    refused or not, pass ``surge_per_minute`` in this or the last minute, ``flood`` is set;
    also for a client that has sent ``client_surge`` reports beyond its hourly rate, so one
    address's burst is flagged before the overall count notices it (0: no per-client flag).
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
    ) -> None:
        self._burst = float(burst)
        self._client_surge = client_surge
        self._rate = per_hour / 3600.0
        self._global = global_per_minute
        self._surge = surge_per_minute
        self._rotate = rotate_seconds
        self._clock = clock
        self._start = clock()
        self._key = secrets.token_bytes(32)
        self._buckets: dict[bytes, _Bucket] = {}
        self._minute = 0
        self._admitted = 0
        self._attempts = 0
        self._last_attempts = 0

    def _roll(self, now: float) -> None:
        if now - self._start >= self._rotate or len(self._buckets) > _MAX_CLIENTS:
            self._start = now
            self._key = secrets.token_bytes(32)
            self._buckets = {}
        minute = int(now // 60)
        if minute != self._minute:
            self._last_attempts = self._attempts if minute == self._minute + 1 else 0
            self._minute = minute
            self._admitted = 0
            self._attempts = 0

    def admit(self, address: str) -> ReportAdmission:
        now = self._clock()
        self._roll(now)
        self._attempts += 1
        flood = max(self._attempts, self._last_attempts) > self._surge
        client = client_id(self._key, address)
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        # The bucket refills continuously: three reports sent a moment ago have used a
        # little less than three tokens, and still count as three.
        if self._client_surge and self._burst - bucket.tokens > self._client_surge - 1:
            flood = True
        if bucket.tokens < 1 or self._admitted >= self._global:
            return ReportAdmission(False, flood)
        bucket.tokens -= 1
        self._admitted += 1
        return ReportAdmission(True, flood)


def client_address(request: Request, trusted: Sequence[IPNetwork]) -> str:
    """The address to rate-limit on: the peer, or, behind a trusted proxy, who it speaks for."""
    peer = request.client.host if request.client else ""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)

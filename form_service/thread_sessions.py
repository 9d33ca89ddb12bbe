"""The tipster's open conversation page, carried by a single-use token instead of a cookie.

After a right receipt code, the status page holds a random token for its next POST. The
token is good once, for IDLE_SECONDS, and only in this process's memory: the thread
identity it stands for (opened with the code) never reaches the database, and a restart
asks for the code again. Each POST with a token gets a page with a new one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from form_service.staff.keys import Identity

IDLE_SECONDS = 20 * 60
MAX_OPEN = 10_000
"""Open pages held at once; past this the oldest is dropped (it asks for its code again)."""


@dataclass(frozen=True)
class OpenThread:
    report_id: int
    identity: Identity
    """The report's thread identity, which reads the conversation."""


class ThreadSessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # By a hash of the token: the tokens themselves are kept nowhere.
        self._open: OrderedDict[bytes, tuple[OpenThread, float]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", errors="replace")).digest()

    def issue(self, thread: OpenThread) -> str:
        self._forget_idle()
        token = secrets.token_urlsafe(24)
        self._open[self._key(token)] = (thread, self._clock())
        while len(self._open) > MAX_OPEN:
            self._open.popitem(last=False)
        return token

    def take(self, token: str) -> OpenThread | None:
        """The thread a token stands for, once: a used, unknown or idle token gives None."""
        found = self._open.pop(self._key(token), None)
        if found is None:
            return None
        thread, issued = found
        return thread if self._clock() - issued < IDLE_SECONDS else None

    def _forget_idle(self) -> None:
        cutoff = self._clock() - IDLE_SECONDS
        while self._open:
            _, (_, issued) = next(iter(self._open.items()))
            if issued >= cutoff:
                break
            self._open.popitem(last=False)

    def __len__(self) -> int:
        return len(self._open)

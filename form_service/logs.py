"""Structured logs: one JSON object per line, naming events only.

No report content, address, user agent or code ever goes into a log line; callers pass an
event name and, at most, small counts or status codes. Stored reports are not logged one
by one but counted per minute (MinuteTally): a line per report would time it to the second,
which the store itself refuses to do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from form_service.times import minute_iso

LOGGER = logging.getLogger("form_service")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, sort_keys=True)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners and daemons replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "info") -> None:
    if not any(isinstance(h, _Stderr) for h in LOGGER.handlers):
        handler = _Stderr()
        handler.setFormatter(JsonLines())
        LOGGER.addHandler(handler)
    LOGGER.setLevel(level.upper())


def log_event(event: str, level: int = logging.INFO, **fields: int | str | bool) -> None:
    LOGGER.log(level, event, extra={"fields": fields})


class MinuteTally:
    """Counts of one event, logged as one line per minute that had any.

    Reports are kept timed to the minute, so that no record lines one up with a network's
    or a proxy's log to point at the visitor who sent them; a log line per report, stamped
    to the second, would undo that. The line names its minute and the counts.
    """

    def __init__(
        self, event: str, clock: Callable[[], float] = time.time, level: int = logging.INFO
    ) -> None:
        self.event = event
        self.level = level
        self._clock = clock
        self._minute: int | None = None
        self._counts: Counter[str] = Counter()

    def add(self, **counts: int) -> None:
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self.flush()
            self._minute = minute
        self._counts.update(counts)

    def flush(self, *, only_past: bool = False) -> None:
        """Log what was counted; with *only_past*, only once its minute is over."""
        if self._minute is None:
            return
        if only_past and self._minute == int(self._clock() // 60):
            return
        at = minute_iso(datetime.fromtimestamp(self._minute * 60, UTC))
        log_event(self.event, self.level, minute=at, **self._counts)
        self._minute = None
        self._counts.clear()

    async def flush_every_minute(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Until cancelled: each minute's line soon after it ends, even if nothing follows."""
        while True:
            await sleep(60 - self._clock() % 60 + 1)
            self.flush(only_past=True)


class MinuteTallies:
    """A MinuteTally per event, made on first use: the form's and the status page's events.

    Every line of those paths would otherwise stamp a visitor's request to the second
    (an invalid report, then its stored copy a minute later; a status look-up).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tallies: dict[str, MinuteTally] = {}

    def add(self, event: str, level: int = logging.INFO, **counts: int) -> None:
        tally = self._tallies.get(event)
        if tally is None:
            tally = self._tallies[event] = MinuteTally(event, self._clock, level)
        tally.add(**counts)

    def flush(self, *, only_past: bool = False) -> None:
        for tally in self._tallies.values():
            tally.flush(only_past=only_past)

    async def flush_every_minute(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        while True:
            await sleep(60 - self._clock() % 60 + 1)
            self.flush(only_past=True)

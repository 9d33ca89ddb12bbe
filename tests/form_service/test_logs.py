"""Structured logs: stored reports counted per minute, never a line each."""

from __future__ import annotations

import asyncio
import json

import pytest

from form_service.logs import MinuteTally, setup_logging


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_a_minute_is_logged_once_with_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info")
    clock = Clock(1_800_000_000.0)  # 2027-01-15T08:00:00Z
    tally = MinuteTally("reports_stored", clock)
    capsys.readouterr()
    for second in (1, 17, 59):
        clock.now = 1_800_000_000.0 + second
        tally.add(reports=1, partners=3)
    tally.flush(only_past=True)  # the minute is not over yet
    assert logged(capsys) == []
    clock.now += 1  # the next minute's first report logs the one before
    tally.add(reports=1, partners=2)
    (line,) = logged(capsys)
    assert line["event"] == "reports_stored"
    assert (line["minute"], line["reports"], line["partners"]) == ("2027-01-15T08:00Z", 3, 9)
    clock.now += 60
    tally.flush(only_past=True)
    (line,) = logged(capsys)
    assert (line["minute"], line["reports"], line["partners"]) == ("2027-01-15T08:01Z", 1, 2)
    tally.flush()  # nothing left to log
    assert logged(capsys) == []


def test_the_last_minute_is_logged_without_a_later_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("info")
    clock = Clock(1_800_000_030.0)
    tally = MinuteTally("reports_stored", clock)
    capsys.readouterr()
    tally.add(reports=1)

    async def wait(seconds: float) -> None:  # time passes at once
        clock.now += seconds
        await asyncio.sleep(0)

    async def a_minute_later() -> None:
        flusher = asyncio.create_task(tally.flush_every_minute(wait))
        for _ in range(3):
            await asyncio.sleep(0)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)

    asyncio.run(a_minute_later())
    (line,) = logged(capsys)
    assert (line["minute"], line["reports"]) == ("2027-01-15T08:00Z", 1)

"""Program figures of requests for information: how many each partner was sent a month,
and the median time it took to answer them (an answer, "nothing relevant" or a decline).

Counted from each request's partner, state and minute-precision times, never its question
or answer; a count of 1 to 4 and a median over fewer than 5 answers are "<5", as the
report figures show them (figures.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from form_service.staff.requests import askable
from form_service.storage.requests import ENDINGS, RequestFacts
from outreach.profile import Profile

SMALL = 5
FEWER_THAN_5 = "<5"

Cell = int | str


@dataclass(frozen=True)
class PartnerMonth:
    asked: Cell
    minutes_to_answer: Cell | None
    """The lower median in whole minutes over the month's answered requests; None: none."""


@dataclass(frozen=True)
class RequestFigures:
    partners: tuple[str, ...]
    """The partners whose agreement permits requests, then any other that was asked."""
    months: dict[str, dict[str, PartnerMonth]]
    """month (YYYY-MM) -> partner id -> its figures."""


def tabulate_requests(
    rows: Iterable[RequestFacts], profile: Profile, months: list[str]
) -> RequestFigures:
    grouped: dict[tuple[str, str], list[RequestFacts]] = {}
    for row in rows:
        if row.asked_at[:7] in months:
            grouped.setdefault((row.asked_at[:7], row.partner_id), []).append(row)
    listed = [partner.id for partner in askable(profile)]
    others = sorted({partner for _, partner in grouped} - set(listed))
    partners = (*listed, *others)
    return RequestFigures(
        partners,
        {
            month: {p: _partner_month(grouped.get((month, p), [])) for p in partners}
            for month in months
        },
    )


def _partner_month(rows: list[RequestFacts]) -> PartnerMonth:
    waits = [
        _minutes(row.asked_at, row.answered_at)
        for row in rows
        if row.state in ENDINGS and row.answered_at is not None
    ]
    median: Cell | None = None
    if waits:
        median = FEWER_THAN_5 if len(waits) < SMALL else statistics.median_low(waits)
    count = len(rows)
    return PartnerMonth(FEWER_THAN_5 if 0 < count < SMALL else count, median)


def _minutes(start: str, end: str) -> int:
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(0, int(delta.total_seconds() // 60))

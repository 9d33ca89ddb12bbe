"""Program figures for the program manager and the board: reports per month by area,
setting, concern and outcome, and the median time to acknowledge and to close.

They are counted from each report's plaintext categories and minute-precision times
(storage/figures.py), never from its content.

Small counts are not shown. A count of 1 to 4 is "<5" (the page says "fewer than 5"); 0 is
0. Each month's number of reports is shown, so the cells of one dimension in one month (its
areas, say) add up to a known total, and a lone "<5" cell could be worked out from the
others. So in such a row the smallest other counts are withheld too ("withheld") until no
"<5" cell can be pinned to one value, for a reader who knows that every "<5" cell is 1 to 4
and every withheld one 5 or more. If even that is not enough, the whole row is withheld,
zeros included. No total across months is shown, so columns give nothing away either. A
median over fewer than 5 reports is "<5" as well: it would be close to one case's times.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from form_service.staff.inbox_views import OUTCOMES
from form_service.staff.request_figures import RequestFigures, tabulate_requests
from form_service.storage import Tx
from form_service.storage.figures import ReportFacts, reports_since
from form_service.storage.requests import requests_since
from outreach.profile import UNKNOWN_AREA, Concern, Profile, Setting

FEWER_THAN_5 = "<5"
WITHHELD = "withheld"
SMALL = 5
NOT_RECORDED = "not_recorded"
"""The category of a report stored before categories were recorded (the area "unknown" is
the tipster's own "not sure")."""
OPEN = "open"
"""The outcome of a report not closed yet."""
DIMENSIONS = ("area", "setting", "concern", "outcome")

Cell = int | str
"""A count, FEWER_THAN_5 or WITHHELD."""


@dataclass(frozen=True)
class MonthFigures:
    month: str
    """YYYY-MM, in UTC."""
    reports: Cell
    minutes_to_acknowledge: Cell | None
    """The median, in whole minutes, over the month's reports acknowledged so far; None
    when there are none yet."""
    minutes_to_close: Cell | None
    by: dict[str, dict[str, Cell]]
    """dimension -> category -> cell, every category of the dimension present."""


@dataclass(frozen=True)
class Figures:
    months: tuple[MonthFigures, ...]
    categories: dict[str, tuple[str, ...]]
    """Each dimension's categories, in the order shown."""
    requests: RequestFigures | None = None
    """Requests for information per partner, per month."""


def month_keys(now: datetime, count: int) -> list[str]:
    """The *count* months up to and including *now*'s, oldest first."""
    year, month = now.year, now.month
    keys = []
    for _ in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return keys[::-1]


async def read_figures(tx: Tx, profile: Profile, now: datetime, months: int) -> Figures:
    keys = month_keys(now, months)
    since = f"{keys[0]}-01T00:00Z"
    figures = tabulate(await reports_since(tx, since), profile, keys)
    asked = tabulate_requests(await requests_since(tx, since), profile, keys)
    return replace(figures, requests=asked)


def tabulate(reports: Iterable[ReportFacts], profile: Profile, months: list[str]) -> Figures:
    by_month: dict[str, list[ReportFacts]] = {month: [] for month in months}
    for report in reports:
        if (found := by_month.get(report.created_at[:7])) is not None:
            found.append(report)
    kept = [report for month in months for report in by_month[month]]
    categories = _categories(kept, profile)
    return Figures(
        tuple(_month(month, by_month[month], categories) for month in months), categories
    )


def _category(report: ReportFacts, dimension: str) -> str:
    if dimension == "outcome":
        return report.outcome or OPEN
    value: str | None = getattr(report, dimension)
    return value or NOT_RECORDED


def _categories(reports: list[ReportFacts], profile: Profile) -> dict[str, tuple[str, ...]]:
    known = {
        "area": (*profile.area_ids(), UNKNOWN_AREA),
        "setting": tuple(setting.value for setting in Setting),
        "concern": tuple(concern.value for concern in Concern),
        "outcome": (*OUTCOMES, OPEN),
    }
    result = {}
    for dimension, listed in known.items():
        # A value the profile no longer lists (an area removed later) still counts.
        seen = {_category(report, dimension) for report in reports} - set(listed)
        extra = sorted(seen - {NOT_RECORDED}) + ([NOT_RECORDED] if NOT_RECORDED in seen else [])
        result[dimension] = (*listed, *extra)
    return result


def _month(
    month: str, reports: list[ReportFacts], categories: dict[str, tuple[str, ...]]
) -> MonthFigures:
    total = len(reports)
    by = {}
    for dimension, listed in categories.items():
        counted = Counter(_category(report, dimension) for report in reports)
        by[dimension] = suppress_row({name: counted[name] for name in listed}, total >= SMALL)
    return MonthFigures(
        month,
        shown(total),
        _median_minutes(reports, "acknowledged_at"),
        _median_minutes(reports, "closed_at"),
        by,
    )


def shown(count: int) -> Cell:
    return FEWER_THAN_5 if 0 < count < SMALL else count


def suppress_row(counts: dict[str, int], total_known: bool) -> dict[str, Cell]:
    """The cells of one dimension in one month; *total_known*: the month's total is shown."""
    small = [name for name, count in counts.items() if 0 < count < SMALL]
    cells: dict[str, Cell] = {name: shown(count) for name, count in counts.items()}
    if not small or not total_known:
        return cells
    # Smallest first; the category name breaks ties so the same data withholds the same cells.
    others = sorted((count, name) for name, count in counts.items() if count >= SMALL)
    hidden = sum(counts[name] for name in small)
    withheld = 0
    while not _cannot_be_worked_out(len(small), withheld, hidden):
        if not others:
            return dict.fromkeys(counts, WITHHELD)
        count, name = others.pop(0)
        cells[name] = WITHHELD
        withheld += 1
        hidden += count
    return cells


def _cannot_be_worked_out(small: int, withheld: int, hidden: int) -> bool:
    """Whether no "<5" cell has a single possible value, given that the hidden cells add up
    to *hidden*, each of the *small* ones is 1 to 4 and each of the *withheld* 5 or more.

    With a withheld cell (no upper bound) a "<5" cell can be as low as 1; it is pinned only
    when every hidden cell is at its least (1s and 5s). Without one, the "<5" cells are
    pinned when there is one of them, or all are 1, or all are 4."""
    if withheld:
        return hidden > small + SMALL * withheld
    return small > 1 and small < hidden < (SMALL - 1) * small


def _median_minutes(reports: list[ReportFacts], column: str) -> Cell | None:
    waits = [
        _minutes(report.created_at, at)
        for report in reports
        if (at := getattr(report, column)) is not None
    ]
    if not waits:
        return None
    if len(waits) < SMALL:
        return FEWER_THAN_5
    # The lower median: a time some report actually took, in whole minutes.
    return statistics.median_low(waits)


def _minutes(start: str, end: str) -> int:
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return max(0, int(delta.total_seconds() // 60))


# -- what the page and `outreach stats` show ---------------------------------------------

NOTES = {
    FEWER_THAN_5: "a count of 1 to 4, or a median over fewer than 5 reports",
    WITHHELD: "a count withheld so that a count below 5 cannot be worked out from the"
    " month's total",
    NOT_RECORDED: "reports stored before categories were recorded",
    OPEN: "reports not closed yet",
}


def as_json(figures: Figures) -> str:
    months = [
        {
            "month": month.month,
            "reports": month.reports,
            "median_minutes_to_acknowledge": month.minutes_to_acknowledge,
            "median_minutes_to_close": month.minutes_to_close,
            **month.by,
            **_requests_json(figures.requests, month.month),
        }
        for month in figures.months
    ]
    return json.dumps({"months": months, "notes": NOTES}, indent=2) + "\n"


def _requests_json(asked: RequestFigures | None, month: str) -> dict[str, object]:
    if asked is None:
        return {}
    per_partner = asked.months[month]
    return {
        "requests": {p: cell.asked for p, cell in per_partner.items()},
        "median_minutes_to_answer": {p: cell.minutes_to_answer for p, cell in per_partner.items()},
    }


CSV_HEADER = ("month", "dimension", "category", "value")


def as_csv(figures: Figures) -> str:
    """One row per figure: (month, dimension, category, value), for a spreadsheet's pivot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for month in figures.months:
        writer.writerow((month.month, "reports", "all", month.reports))
        for dimension in DIMENSIONS:
            for category, cell in month.by[dimension].items():
                writer.writerow((month.month, dimension, category, cell))
        for name, median in (
            ("median_minutes_to_acknowledge", month.minutes_to_acknowledge),
            ("median_minutes_to_close", month.minutes_to_close),
        ):
            writer.writerow((month.month, name, "all", "" if median is None else median))
        if figures.requests is not None:
            for partner, asked in figures.requests.months[month.month].items():
                answer = "" if asked.minutes_to_answer is None else asked.minutes_to_answer
                writer.writerow((month.month, "requests", partner, asked.asked))
                writer.writerow((month.month, "median_minutes_to_answer", partner, answer))
    return out.getvalue()


@dataclass(frozen=True)
class Bar:
    month: str
    label: str
    x: int
    y: int
    height: int
    """0 for a month with no reports or fewer than 5 (no bar, only its label)."""


CHART_HEIGHT = 160
BAR_STEP = 56
BAR_WIDTH = 40
CHART_TOP = 20


def chart_bars(figures: Figures) -> list[Bar]:
    """Reports per month as bars of an inline SVG: exact counts only, scaled to the tallest."""
    counts = [m.reports if isinstance(m.reports, int) else 0 for m in figures.months]
    tallest = max(counts, default=0) or 1
    bars = []
    for index, (month, count) in enumerate(zip(figures.months, counts, strict=True)):
        height = round(CHART_HEIGHT * count / tallest)
        bars.append(
            Bar(
                month.month,
                str(month.reports),
                x=index * BAR_STEP + (BAR_STEP - BAR_WIDTH) // 2,
                y=CHART_TOP + CHART_HEIGHT - height,
                height=height,
            )
        )
    return bars


def duration(minutes: Cell | None) -> str:
    """A median as the page shows it: 45 min, 3 h 20 min, 2 d 4 h."""
    if minutes is None or isinstance(minutes, str):
        return "" if minutes is None else minutes
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"

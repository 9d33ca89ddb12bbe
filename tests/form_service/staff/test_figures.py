"""Program figures on both databases: counts per month by category, medians, small counts
hidden so that none can be worked out, the page for admins and intake, CSV, JSON, the CLI."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from form_service.intake import prepare_report
from form_service.settings import Settings
from form_service.staff import figures as program
from form_service.staff.figures import FEWER_THAN_5, WITHHELD, Figures, suppress_row
from form_service.storage import Store
from form_service.storage import staff as records
from outreach.cli import main
from outreach.loader import LoadedProfile
from outreach.profile import Concern
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.samples import report
from tests.form_service.staff.support import CodeClock, Staff, csrf_of, enrol, sign_in

T = TypeVar("T")
CANARY = "figures-canary-5e1c the bike shed"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


# -- the suppression rule, on its own -------------------------------------------------------

ROWS = [
    # counts, the month's total shown, cells shown
    ({"a": 0, "b": 6, "c": 12}, True, {"a": 0, "b": 6, "c": 12}),
    ({"a": 1, "b": 10, "c": 0}, True, {"a": "<5", "b": WITHHELD, "c": 0}),
    # 1 + 5 would pin both at their least: one more is withheld
    ({"a": 1, "b": 5, "c": 7}, True, {"a": "<5", "b": WITHHELD, "c": WITHHELD}),
    ({"a": 2, "b": 3, "c": 9}, True, {"a": "<5", "b": "<5", "c": 9}),
    # two 4s add up to 8, which only 4 + 4 can make
    ({"a": 4, "b": 4, "c": 9}, True, {"a": "<5", "b": "<5", "c": WITHHELD}),
    ({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 0}, True, dict.fromkeys("abcdef", WITHHELD)),
    ({"a": 2, "b": 1, "c": 0}, False, {"a": "<5", "b": "<5", "c": 0}),
]


@pytest.mark.parametrize(("counts", "total_known", "expected"), ROWS)
def test_suppress_row(counts: dict[str, int], total_known: bool, expected: dict[str, Any]) -> None:
    assert suppress_row(counts, total_known) == expected


def _possible_values(cells: dict[str, Any], total: int) -> dict[str, set[int]]:
    """What a reader who knows the total can tell of each cell: "<5" is 1-4, a withheld
    cell 5 or more (any value when the whole row is withheld)."""
    whole_row = all(cell == WITHHELD for cell in cells.values())
    ranges = []
    for cell in cells.values():
        if cell == FEWER_THAN_5:
            ranges.append(range(1, 5))
        elif cell == WITHHELD:
            ranges.append(range(0 if whole_row else 5, total + 1))
        else:
            ranges.append(range(cell, cell + 1))
    possible: dict[str, set[int]] = {name: set() for name in cells}
    for values in itertools.product(*ranges):
        if sum(values) == total:
            for name, value in zip(cells, values, strict=True):
                possible[name].add(value)
    return possible


def test_no_count_below_5_can_be_worked_out_from_the_months_total() -> None:
    for values in itertools.product(range(10), repeat=4):
        total = sum(values)
        counts = dict(zip("abcd", values, strict=True))
        cells = suppress_row(counts, total_known=total >= 5)
        if total < 5:
            continue
        possible = _possible_values(cells, total)
        for name, count in counts.items():
            assert count in possible[name], (counts, cells)
            if 0 < count < 5:
                assert len(possible[name]) > 1, (counts, cells)


# -- counted from the database ---------------------------------------------------------------


def run(database: Database, work: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await database.open_store()
        try:
            return await work(store)
        finally:
            await store.close()

    return anyio.run(main)


@dataclass
class Filed:
    at: str
    changes: dict[str, Any]
    acknowledged_after: int | None = None
    """Minutes after it was received."""
    closed_after: int | None = None
    categories: bool = True


JUNE = [
    Filed(
        f"2026-06-0{n + 1}T09:00",
        {"area": "north" if n < 6 else "south"} | ({} if n < 5 else {"concern": Concern.self_harm}),
        acknowledged_after=10 * (n + 1) if n < 5 else None,
        closed_after=60 * (n + 1) if n < 5 else None,
    )
    for n in range(7)
]
PLAN = [
    Filed("2025-06-30T23:59", {"area": "east"}),  # before the first of the 12 months
    Filed("2025-07-01T00:00", {"area": "east"}),
    Filed("2026-03-10T10:00", {}, categories=False),  # stored before categories were kept
    *[Filed(f"2026-05-0{n + 1}T08:30", {"area": "east"}) for n in range(3)],
    *JUNE,
]


async def file_plan(store: Store, profile: LoadedProfile) -> None:
    for n, filed in enumerate(PLAN):
        when = datetime.fromisoformat(filed.at).replace(tzinfo=UTC)
        sample = report(description=CANARY, **filed.changes)
        new, _ = prepare_report(sample, profile.profile, f"token-{n:04d}", "secret", when)
        if not filed.categories:
            new = replace(new, categories=None)
        await store.save_report(new)
        async with store.transaction() as tx:
            if filed.acknowledged_after is not None:
                later = when + timedelta(minutes=filed.acknowledged_after)
                await records.acknowledge(tx, new.report_ref, later)
            if filed.closed_after is not None:
                later = when + timedelta(minutes=filed.closed_after)
                await records.close(tx, new.report_ref, "referral", later)


@pytest.fixture
def figures(database: Database, keyed_demo: LoadedProfile) -> Figures:
    async def work(store: Store) -> Figures:
        await file_plan(store, keyed_demo)
        async with store.transaction() as tx:
            return await program.read_figures(tx, keyed_demo.profile, NOW, 12)

    return run(database, work)


def month(figures: Figures, key: str) -> program.MonthFigures:
    return next(m for m in figures.months if m.month == key)


def test_reports_per_month_and_by_category(figures: Figures) -> None:
    assert [m.month for m in figures.months][::11] == ["2025-07", "2026-06"]
    assert [m.reports for m in figures.months] == ["<5", 0, 0, 0, 0, 0, 0, 0, "<5", 0, "<5", 7]
    june = month(figures, "2026-06")
    # One south report: hidden, and the north count withheld so the total can't give it away.
    assert june.by["area"] == {
        "north": WITHHELD,
        "south": "<5",
        "east": 0,
        "unknown": 0,
        "not_recorded": 0,
    }
    assert june.by["setting"]["school"] == 7
    assert june.by["concern"] == {
        "harm_others": WITHHELD,
        "self_harm": "<5",
        "both": 0,
        "not_sure": 0,
        "not_recorded": 0,
    }
    assert june.by["outcome"]["referral"] == WITHHELD and june.by["outcome"]["open"] == "<5"
    assert month(figures, "2026-05").by["area"]["east"] == "<5"
    assert month(figures, "2026-04").by["area"] == {
        "north": 0,
        "south": 0,
        "east": 0,
        "unknown": 0,
        "not_recorded": 0,
    }
    assert month(figures, "2026-03").by["area"]["not_recorded"] == "<5"
    assert figures.categories["area"][-1] == "not_recorded"


def test_median_times_to_acknowledge_and_to_close(
    figures: Figures, keyed_demo: LoadedProfile
) -> None:
    june = month(figures, "2026-06")
    assert june.minutes_to_acknowledge == 30  # 10, 20, 30, 40, 50 minutes
    assert june.minutes_to_close == 180  # 1 to 5 hours
    assert month(figures, "2026-05").minutes_to_acknowledge is None  # none acknowledged
    two = [
        program.ReportFacts("2026-06-01T09:00Z", "north", "school", "not_sure", None, at, None)
        for at in ("2026-06-01T09:05Z", "2026-06-01T10:00Z")
    ]
    few = program.tabulate(two, keyed_demo.profile, ["2026-06"]).months[0]
    assert few.minutes_to_acknowledge == "<5"  # a median of two would be near one case's time


def test_csv_and_json_hold_the_figures_and_no_report_text(figures: Figures) -> None:
    text = program.as_csv(figures)
    lines = text.splitlines()
    assert lines[0] == "month,dimension,category,value"
    assert "2026-06,reports,all,7" in lines
    assert "2026-06,area,south,<5" in lines and "2026-06,area,north,withheld" in lines
    assert "2026-06,median_minutes_to_acknowledge,all,30" in lines
    assert "2026-05,median_minutes_to_close,all," in lines
    assert "2026-03,area,not_recorded,<5" in lines
    data = json.loads(program.as_json(figures))
    june = data["months"][-1]
    assert june["month"] == "2026-06" and june["reports"] == 7
    assert june["area"]["south"] == "<5" and june["median_minutes_to_close"] == 180
    assert set(june) == {
        "month",
        "reports",
        "median_minutes_to_acknowledge",
        "median_minutes_to_close",
        "area",
        "setting",
        "concern",
        "outcome",
        "requests",
        "median_minutes_to_answer",
    }
    assert set(data["notes"]) >= {"<5", "withheld"}
    for shown in (text, program.as_json(figures)):
        assert CANARY not in shown and "Harbor High gym" not in shown


def test_categories_are_stored_in_the_clear_and_the_text_is_not(
    database: Database, keyed_demo: LoadedProfile
) -> None:
    run(database, lambda store: file_plan(store, keyed_demo))
    rows = database.rows("SELECT area, setting, concern FROM reports ORDER BY created_at")
    assert rows[0] == ("east", "school", "harm_others")
    assert (None, None, None) in rows
    # Partner copies waiting for delivery are plain until sent; the report's row is not.
    stored = database.rows("SELECT * FROM reports")
    assert stored and all(
        CANARY.encode() not in (bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode())
        for row in stored
        for v in row
    )
    assert "Harbor High gym" not in repr(stored)


# -- the page ------------------------------------------------------------------------------


@dataclass
class Desk:
    client: TestClient
    settings: Settings
    database: Database
    staff: Staff
    clock: CodeClock

    def export(self, download: str = "csv", code: str | None = None, **extra: str) -> Any:
        page = self.client.get("/staff/figures")
        data = {"csrf": csrf_of(page.text), "format": download, **extra}
        data["code"] = self.clock.next_code(self.staff.totp_secret) if code is None else code
        return self.client.post("/staff/figures/export", data=data)

    def actions(self) -> list[tuple[str, str | None]]:
        rows = self.database.rows(
            "SELECT action, detail FROM staff_audit WHERE action LIKE 'figures_export%' ORDER BY id"
        )
        return [(str(action), detail) for action, detail in rows]


@pytest.fixture
def admin_desk(
    database: Database, make_settings: Callable[..., Settings], code_clock: CodeClock
) -> Iterator[Desk]:
    settings = make_settings(database_url=database.url)
    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "board@example.org", "admin")
        sign_in(client, code_clock, staff)
        yield Desk(client, settings, database, staff, code_clock)


def test_the_page_for_an_admin(admin_desk: Desk) -> None:
    with start_client(admin_desk.settings) as tipster:
        assert submit(tipster, description=CANARY).status_code == 200
    page = admin_desk.client.get("/staff/figures")
    assert page.status_code == 200
    assert 'href="/staff/figures"' in page.text  # in the navigation
    assert "<script" not in page.text and CANARY not in page.text
    svg = re.search(r"<svg[^>]*>.*?</svg>", page.text, re.S)
    assert svg is not None
    opening = svg.group(0).split(">", 1)[0]
    assert 'role="img"' in opening and 'aria-labelledby="chart-title"' in opening
    assert re.search(r'<title id="chart-title">[^<]+</title>', svg.group(0))
    assert "&lt;5" in svg.group(0)  # this month's one report, not drawn as a bar
    this_month = datetime.now(UTC).strftime("%Y-%m")
    assert re.search(rf"<th scope=\"row\">{this_month}</th><td>fewer than 5</td>", page.text)
    assert '<form method="post" action="/staff/figures/export">' in page.text
    actions = admin_desk.database.rows("SELECT actor, action FROM staff_audit")
    assert ("board@example.org", "figures_viewed") in actions


def test_a_download_asks_for_a_new_code_and_is_on_the_audit_trail(admin_desk: Desk) -> None:
    answer = admin_desk.export("csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text.startswith("month,dimension,category,value\n")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == 'attachment; filename="figures.csv"'
    data = admin_desk.export("json").json()
    assert len(data["months"]) == 12
    assert admin_desk.actions() == [("figures_exported", "csv"), ("figures_exported", "json")]


def test_the_page_address_no_longer_downloads(admin_desk: Desk) -> None:
    for download in ("csv", "json"):
        answer = admin_desk.client.get(f"/staff/figures?format={download}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
    assert admin_desk.actions() == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Type the 6-digit code your app shows now: a download asks for a new one."),
        ("wrong", "That code is not right. Type the 6-digit code your app shows now."),
        ("used", "That code is not right. Type the 6-digit code your app shows now."),
        ("no format", "Choose CSV or JSON."),
    ],
)
def test_a_download_without_a_good_code_is_refused(
    admin_desk: Desk, case: str, message: str
) -> None:
    exports: list[tuple[str, str | None]] = []
    if case == "used":
        code = admin_desk.clock.next_code(admin_desk.staff.totp_secret)
        assert admin_desk.export("csv", code).status_code == 200
        exports.append(("figures_exported", "csv"))
        answer = admin_desk.export("csv", code)
    elif case == "wrong":
        good = admin_desk.clock.next_code(admin_desk.staff.totp_secret)
        answer = admin_desk.export("csv", f"{(int(good) + 1) % 1_000_000:06d}")
    elif case == "missing":
        answer = admin_desk.export("csv", "  ")
    else:
        answer = admin_desk.export("xlsx")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in answer.headers
    assert message in answer.text.replace("&#39;", "'")
    assert 'role="alert"' in answer.text
    assert admin_desk.actions() == [*exports, ("figures_export_refused", None)]


def test_the_refusal_is_in_the_users_language(admin_desk: Desk) -> None:
    page = admin_desk.client.get("/staff/figures", headers={"Accept-Language": "es"})
    answer = admin_desk.client.post(
        "/staff/figures/export",
        data={"csrf": csrf_of(page.text), "format": "csv", "code": ""},
        headers={"Accept-Language": "es"},
    )
    assert answer.status_code == 422
    assert "Escriba el código de 6 dígitos que muestra ahora su aplicación" in answer.text


def test_a_download_needs_the_forms_token_and_this_site(admin_desk: Desk) -> None:
    code = admin_desk.clock.next_code(admin_desk.staff.totp_secret)
    without = admin_desk.client.post("/staff/figures/export", data={"format": "csv", "code": code})
    assert without.status_code == 403
    page = admin_desk.client.get("/staff/figures")
    cross = admin_desk.client.post(
        "/staff/figures/export",
        data={"csrf": csrf_of(page.text), "format": "csv", "code": code},
        headers={"Origin": "https://elsewhere.example.net", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert admin_desk.actions() == []
    # The code was not spent on the refused requests.
    assert admin_desk.export("csv", code).status_code == 200


@pytest.mark.parametrize("role", ["auditor", "partner:harbor-schools"])
def test_auditors_and_partners_cannot_open_the_figures(
    admin_desk: Desk, code_clock: CodeClock, role: str
) -> None:
    with start_client(admin_desk.settings) as other:
        staff = enrol(other, admin_desk.settings, code_clock, "other@example.org", role)
        sign_in(other, code_clock, staff)
        inbox = other.get("/staff/")
        assert 'href="/staff/figures"' not in inbox.text
        assert other.get("/staff/figures").status_code == 403
        code = code_clock.next_code(staff.totp_secret)
        data = {"csrf": csrf_of(inbox.text), "format": "csv", "code": code}
        assert other.post("/staff/figures/export", data=data).status_code == 403


# -- outreach stats --------------------------------------------------------------------------


def test_outreach_stats(
    database: Database, keyed_demo: LoadedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DATABASE_URL", database.url)

    async def six_now(store: Store) -> None:
        for n in range(6):
            new, _ = prepare_report(
                report(description=CANARY), keyed_demo.profile, f"cli-{n}", "s", datetime.now(UTC)
            )
            await store.save_report(new)

    run(database, six_now)
    this_month = datetime.now(UTC).strftime("%Y-%m")
    result = CliRunner().invoke(main, ["stats", "--months", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "month,dimension,category,value"
    assert f"{this_month},reports,all,6" in lines and f"{this_month},area,north,6" in lines
    assert len({line.split(",")[0] for line in lines[1:]}) == 3
    as_json = CliRunner().invoke(main, ["stats", "--format", "json"])
    assert json.loads(as_json.output)["months"][-1]["setting"]["school"] == 6
    assert CANARY not in result.output + as_json.output
    assert database.rows(
        "SELECT actor, detail FROM staff_audit WHERE action = 'figures_exported' ORDER BY id"
    ) == [("command line", "csv"), ("command line", "json")]


def test_outreach_stats_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OUTREACH_DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["stats", "--format", "json", "--months", "2"])
    assert result.exit_code == 0, result.output
    assert [m["reports"] for m in json.loads(result.output)["months"]] == [0, 0]
    assert not list((tmp_path / "data").glob("*.sqlite3"))

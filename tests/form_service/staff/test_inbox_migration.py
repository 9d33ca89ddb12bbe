"""The inbox's migration (v2) on a database the code before it filled: every stored report
stays, with its deliveries and audit trail, enters the inbox as received, stays readable
with the archive key only, and its tipster still reads its status. On both databases."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pyrage
import pytest

from form_service.intake import prepare_report
from form_service.settings import Settings
from form_service.storage import NewReport, postgres, rows, sqlite
from form_service.storage import statements as q
from form_service.storage.migrations import MIGRATIONS
from form_service.times import minute_iso, minute_start_stamp
from tests.databases import Database
from tests.form_service.conftest import start_client, submit
from tests.form_service.samples import report
from tests.form_service.staff.support import CodeClock, enrol, sign_in

# How the code of schema v1 inserted a report: no inbox columns yet.
V1_REPORT_INSERT = (
    "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
    " content_age) VALUES (?, ?, ?, 'received', ?, ?)"
)
WHEN = datetime.now(UTC) - timedelta(days=2)


@dataclass(frozen=True)
class OldReport:
    new: NewReport
    code: str
    delivered: bool


def old_reports(settings: Settings) -> list[OldReport]:
    """Four reports as v1 stored them (archive key only), the second one danger-now;
    the first two delivered, the others still waiting."""
    profile = settings.profile.profile
    made = []
    for n in range(4):
        filed = report(description=f"old report {n} canary-{n}-c41b", danger_now=n == 1)
        at = WHEN + timedelta(minutes=n)
        new, code = prepare_report(filed, profile, f"{n:032x}", settings.secret_keys[0], at)
        made.append(OldReport(new, code, delivered=n < 2))
    return made


async def _write_v1(database: Database, reports: list[OldReport]) -> None:
    store = await database.open_store()
    try:
        for old in reports:
            new = old.new
            at = minute_iso(new.created_at)
            async with store.transaction() as tx:
                found = await tx.fetch(
                    V1_REPORT_INSERT + " RETURNING id",
                    (new.report_ref, new.receipt_hash, new.token_id, at, new.content_age),
                )
                outbox, audit = rows.new_report_rows(
                    new, int(found[0][0]), at, minute_start_stamp(new.created_at)
                )
                for values in outbox:
                    await tx.run(q.OUTBOX_INSERT, values)
                for values in audit:
                    await tx.run(q.AUDIT_INSERT, values)
        # Delivery has not changed since v1: the store's own method marks it.
        for old in reports:
            if old.delivered:
                for entry in old.new.outbox:
                    await store.mark_delivered(entry.delivery_id)
    finally:
        await store.close()


def make_v1_database(
    database: Database, reports: list[OldReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as only_v1:
        only_v1.setattr(sqlite, "MIGRATIONS", MIGRATIONS[:1])
        only_v1.setattr(postgres, "MIGRATIONS", MIGRATIONS[:1])
        anyio.run(_write_v1, database, reports)
    assert database.rows("SELECT version FROM schema_migrations") == [(1,)]


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """The v1 tables as v1 wrote them, column by column (binary as bytes).

    The form token's id is left out: the conversation's migration forgets it on purpose,
    so that nothing stored derives a receipt code (checked below)."""
    columns = {
        "reports": "id, report_ref, receipt_hash, status, created_at, content_age",
        "outbox": "id, report_id, partner_id, rule_id, agreement_id, payload, status,"
        " attempts, next_attempt_at, created_at, delivered_at, is_intake",
        "audit_events": "id, at, report_ref, event, partner_id, rule_id, agreement_id,"
        " fields, outcome",
    }
    return {
        table: [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in database.rows(f"SELECT {cols} FROM {table} ORDER BY id")
        ]
        for table, cols in columns.items()
    }


def migrate_now(database: Database) -> None:
    async def open_and_close() -> None:
        store = await database.open_store()
        await store.close()

    anyio.run(open_and_close)


def test_every_report_of_schema_v1_survives_the_inbox_migration(
    database: Database,
    make_settings: Callable[..., Settings],
    code_clock: CodeClock,
    archive_identity: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(database_url=database.url)
    reports = old_reports(settings)
    make_v1_database(database, reports, monkeypatch)
    before = snapshot(database)
    assert len(before["reports"]) == 4 and len(before["outbox"]) > 4

    migrate_now(database)

    assert database.rows("SELECT version FROM schema_migrations ORDER BY version") == [
        (m.version,) for m in MIGRATIONS
    ]
    assert snapshot(database) == before
    assert database.rows("SELECT token_id FROM reports ORDER BY id") == [
        ("forgotten:" + old.new.report_ref,) for old in reports
    ]
    inbox_state = database.rows(
        "SELECT urgent, stage, acknowledged_at, assigned_to, outcome, closed_at FROM reports"
    )
    assert inbox_state == [(0, "received", None, None, None, None)] * 4
    statuses = dict(database.rows("SELECT report_ref, status FROM reports"))
    assert statuses == {
        old.new.report_ref: "delivered" if old.delivered else "received" for old in reports
    }
    for old in reports:
        sealed = dict(database.rows("SELECT report_ref, content_age FROM reports"))
        opened = json.loads(pyrage.decrypt(bytes(sealed[old.new.report_ref]), [archive_identity]))
        assert opened["report_ref"] == old.new.report_ref

    with start_client(settings) as client:
        staff = enrol(client, settings, code_clock, "intake@example.org")
    with start_client(settings) as client:
        sign_in(client, code_clock, staff)
        inbox = client.get("/staff/").text
        listed = re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', inbox)
        assert sorted(listed) == sorted(old.new.report_ref for old in reports)
        assert 'id="urgent-title"' not in inbox  # v1 kept no danger-now flag
        assert sorted(
            re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', client.get("/staff/?view=new").text)
        ) == sorted(listed)
        check_case_pages(client, reports)
        # A report filed now is sealed to the team key too: the same user reads it.
        assert submit(client, description="new report canary-new-77e1").status_code == 200
        newest = re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', client.get("/staff/").text)[0]
        assert "canary-new-77e1" in client.get(f"/staff/reports/{newest}").text
        for old in reports:
            page = re.sub(r"\s+", " ", client.post("/status", data={"code": old.code}).text)
            expected = "Delivered to the team" if old.delivered else "Received"
            assert expected in page, old.new.report_ref


def check_case_pages(client: Any, reports: list[OldReport]) -> None:
    for old in reports:
        ref = old.new.report_ref
        page = re.sub(r"\s+", " ", client.get(f"/staff/reports/{ref}").text)
        assert f"canary-{reports.index(old)}-c41b" not in page
        assert "You cannot read this team" in page  # sealed before the team key existed
        for entry in old.new.outbox:
            assert entry.partner_id in page and entry.rule_id in page
        shown = re.findall(r"<td>(delivered|pending)", page)
        assert shown == ["delivered" if old.delivered else "pending"] * len(old.new.outbox)

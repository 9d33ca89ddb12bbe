"""Wiping, purging and the audit trail, checked down to the bytes of the database files
(SQLite) or of a dump of the database (PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from outreach.cli import main
from outreach.loader import LoadedProfile
from tests.databases import Database
from tests.form_service.delivery.reports import make_worker, open_store, rows, submit
from tests.form_service.samples import report

CANARY = "CANARY-7Q4Z-in-the-description"


def _holding(database: Database, text: str) -> bool:
    return text.encode() in database.raw()


def test_delivered_payload_is_gone_from_every_database_file(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:

    async def scenario() -> None:
        store = await open_store(database)
        await submit(store, demo.profile, report(description=CANARY))
        assert _holding(database, CANARY), "the test must see the canary before delivery"
        await make_worker(store, demo.profile, data_dir).drain()
        assert not _holding(database, CANARY)  # while the store is still open
        await store.close()

    asyncio.run(scenario())
    assert not _holding(database, CANARY)
    assert rows(database, "SELECT count(*) FROM outbox WHERE payload IS NOT NULL") == [(0,)]


def _env(data_dir: Path, database: Database | None = None) -> dict[str, str]:
    return {"OUTREACH_DATA_DIR": str(data_dir), **(database.env() if database else {})}


def test_purge_removes_old_reports_and_keeps_the_audit_trail(
    demo: LoadedProfile, data_dir: Path, database: Database
) -> None:
    old = datetime.now(UTC) - timedelta(days=demo.profile.retention.days + 1)

    async def scenario() -> tuple[str, str]:
        store = await open_store(database)
        # The old report was never delivered: its plaintext payloads are still there.
        stale = await submit(store, demo.profile, report(description=CANARY), now=old)
        fresh = await submit(store, demo.profile)
        await store.close()
        return stale.report_ref, fresh.report_ref

    stale, fresh = asyncio.run(scenario())
    assert _holding(database, CANARY)
    result = CliRunner().invoke(main, ["purge"], env=_env(data_dir, database))
    assert result.exit_code == 0, result.output
    assert "Purged 1 report(s) older than 365 days." in result.output
    assert rows(database, "SELECT report_ref FROM reports") == [(fresh,)]
    assert rows(
        database,
        "SELECT count(*) FROM outbox o JOIN reports r ON r.id = o.report_id WHERE r.report_ref = ?",
        stale,
    ) == [(0,)]
    events = [
        event
        for (event,) in rows(
            database, "SELECT event FROM audit_events WHERE report_ref = ? ORDER BY id", stale
        )
    ]
    assert events[0] == "received" and "routed" in events and events[-1] == "purged"
    assert not _holding(database, CANARY)
    again = CliRunner().invoke(main, ["purge"], env=_env(data_dir, database))
    assert "Purged 0 report(s)" in again.output


def test_purge_without_a_database_does_nothing(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["purge"], env=_env(data_dir))
    assert result.exit_code == 0
    assert not (data_dir / "reports.sqlite3").exists()


@pytest.fixture
def delivered(demo: LoadedProfile, data_dir: Path, database: Database) -> str:

    async def scenario() -> str:
        store = await open_store(database)
        filed = await submit(store, demo.profile, report(description=CANARY))
        await submit(store, demo.profile)
        await make_worker(store, demo.profile, data_dir).drain()
        await store.close()
        return filed.report_ref

    return asyncio.run(scenario())


def test_audit_prints_one_reports_trail_without_content(
    data_dir: Path, database: Database, delivered: str
) -> None:
    result = CliRunner().invoke(
        main, ["audit", "--report", delivered], env=_env(data_dir, database)
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(delivered in line for line in lines)
    assert "received" in lines[0]
    routed = [line for line in lines if " routed " in line]
    assert any(
        "partner=intake-team" in line
        and "rule=intake" in line
        and "agreement=HC-ISA-00" in line
        and "fields=description,location,setting,concern,when,people,danger_now,contact" in line
        for line in routed
    )
    done = [line for line in lines if " delivered " in line]
    assert len(done) == len(routed) >= 2
    assert CANARY not in result.output and "knife" not in result.output


def test_audit_by_date(data_dir: Path, database: Database, delivered: str) -> None:
    today = datetime.now(UTC).date()
    both = CliRunner().invoke(
        main, ["audit", "--since", str(today), "--until", str(today)], env=_env(data_dir, database)
    )
    refs = {line.split()[2] for line in both.output.splitlines()}
    assert len(refs) == 2 and delivered in refs
    tomorrow = str(today + timedelta(days=1))
    none = CliRunner().invoke(main, ["audit", "--since", tomorrow], env=_env(data_dir, database))
    assert none.output.strip() == "No audit events match."
    before = CliRunner().invoke(
        main, ["audit", "--until", str(today - timedelta(days=1))], env=_env(data_dir, database)
    )
    assert before.output.strip() == "No audit events match."


def test_audit_rejects_a_bad_date(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "--since", "last week"], env=_env(data_dir))
    assert result.exit_code == 2
    assert "'last week' does not match the format '%Y-%m-%d'" in result.output


def test_purge_deletes_the_mail_the_kit_delivered_past_retention(
    demo: LoadedProfile, data_dir: Path
) -> None:
    days = demo.profile.retention.days
    root = data_dir / "maildir"
    old = time.time() - (days + 1) * 86400
    recent = time.time() - (days - 1) * 86400
    written = {
        root / "intake-team" / "new" / str(uuid.uuid4()): old,  # never read
        root / "harbor-schools" / "cur" / f"{uuid.uuid4()}:2,S": old,  # read and flagged
        root / "_alerts" / "new" / str(uuid.uuid4()): old,  # the intake team's alerts
        root / "intake-team" / "new" / str(uuid.uuid4()): recent,
        root / "intake-team" / "cur" / "note-from-the-team.txt": old,  # not the kit's
        root / "someone-elses" / "new" / str(uuid.uuid4()): old,  # no partner's folder
    }
    for path, mtime in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CANARY, encoding="utf-8")
        os.utime(path, (mtime, mtime))
    result = CliRunner().invoke(main, ["purge"], env=_env(data_dir))
    assert result.exit_code == 0, result.output
    assert f"Deleted 3 delivered message(s) older than {days} days" in result.output
    kept = sorted(str(p.relative_to(root)) for p in written if p.exists())
    expected = sorted(str(p.relative_to(root)) for p in list(written)[3:])
    assert kept == expected

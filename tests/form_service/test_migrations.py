"""Every schema migration applies to an empty database and is recorded once."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from form_service.storage.migrations import MIGRATIONS
from form_service.storage.sqlite import connect, migrate

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_versions_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"v{m.version}")
def test_migration_applies_to_an_empty_database(tmp_path: Path, migration: object) -> None:
    with closing(connect(tmp_path / "empty.sqlite3")) as conn:
        applied = migrate(conn, NOW)
        versions = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        assert applied == [m.version for m in MIGRATIONS]
        assert (getattr(migration, "version"), "2026-01-02T03:04:05.000000Z") in versions
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_initial_schema(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "db.sqlite3")) as conn:
        migrate(conn, NOW)
        assert {"reports", "outbox", "audit_events", "schema_migrations"} <= tables(conn)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(outbox)")}
        assert columns == {
            "id",
            "report_id",
            "partner_id",
            "rule_id",
            "agreement_id",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "claimed_until",
            "last_error",
            "created_at",
            "delivered_at",
            "is_intake",
        }
        unique = {r[1] for r in conn.execute("PRAGMA index_list(reports)") if r[2]}
        unique_columns = {
            conn.execute(f"PRAGMA index_info('{name}')").fetchone()[2] for name in unique
        }
        assert unique_columns == {"report_ref", "receipt_hash", "token_id"}


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "db.sqlite3")) as conn:
        migrate(conn, NOW)
        assert migrate(conn, NOW) == []
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(MIGRATIONS),
        )


def test_a_failing_migration_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from form_service.storage import migrations, sqlite

    bad = migrations.Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE x (a)", "NOT SQL"))
    monkeypatch.setattr(sqlite, "MIGRATIONS", (*MIGRATIONS, bad))
    with closing(connect(tmp_path / "db.sqlite3")) as conn:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, NOW)
        assert "x" not in tables(conn)
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (
            len(MIGRATIONS),
        )

"""Every schema migration applies to an empty database, SQLite or PostgreSQL, and is
recorded once."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import anyio
import psycopg
import pytest

from form_service.storage.migrations import MIGRATIONS, Migration
from form_service.storage.postgres import migrate as pg_migrate
from form_service.storage.sqlite import connect, migrate
from tests.databases import Database, only_postgres

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


# PostgreSQL: the same versions, applied by the same rules, with its own dialect's SQL.


def _pg_migrate(database: Database, migrations: tuple[Migration, ...] | None = None) -> list[int]:
    async def run() -> list[int]:
        async with await psycopg.AsyncConnection.connect(database.url, autocommit=True) as conn:
            return await pg_migrate(conn, NOW, migrations)

    return anyio.run(run)


def _pg_columns(database: Database, table: str) -> set[str]:
    found = database.rows(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ?",
        table,
    )
    return {name for (name,) in found}


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"v{m.version}")
def test_every_migration_is_written_for_both_databases(migration: Migration) -> None:
    assert migration.postgres is not None, "say the PostgreSQL SQL, even when it is the same"
    assert len(migration.for_dialect("postgres")) == len(migration.for_dialect("sqlite"))


@only_postgres
def test_postgres_schema_matches_sqlite(tmp_path: Path, database: Database) -> None:
    assert _pg_migrate(database) == [m.version for m in MIGRATIONS]
    with closing(connect(tmp_path / "db.sqlite3")) as conn:
        migrate(conn, NOW)
        for table in ("reports", "outbox", "audit_events", "schema_migrations"):
            sqlite_columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            assert _pg_columns(database, table) == sqlite_columns, table
    unique = database.rows(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'reports'::regclass"
        " AND i.indisunique AND NOT i.indisprimary"
    )
    assert {name for (name,) in unique} == {"report_ref", "receipt_hash", "token_id"}
    assert database.rows("SELECT version, applied_at FROM schema_migrations") == [
        (m.version, "2026-01-02T03:04:05.000000Z") for m in MIGRATIONS
    ]


@only_postgres
def test_postgres_processes_starting_together_migrate_once(database: Database) -> None:

    async def together() -> list[list[int]]:
        conns = [
            await psycopg.AsyncConnection.connect(database.url, autocommit=True) for _ in range(4)
        ]
        try:
            return list(await asyncio.gather(*(pg_migrate(c, NOW) for c in conns)))
        finally:
            for conn in conns:
                await conn.close()

    applied = anyio.run(together)
    # Each migration takes the lock on its own, so the work may be shared out between the
    # processes; each migration is applied by exactly one of them, in order.
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]
    assert all(versions == sorted(versions) for versions in applied)
    assert _pg_migrate(database) == []
    assert database.rows("SELECT count(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


@only_postgres
def test_a_failing_postgres_migration_is_rolled_back(database: Database) -> None:
    bad = Migration(
        len(MIGRATIONS) + 1, "broken", (), postgres=("CREATE TABLE x (a int)", "NOT SQL")
    )
    with pytest.raises(psycopg.errors.SyntaxError):
        _pg_migrate(database, (*MIGRATIONS, bad))
    assert "x" not in {
        name
        for (name,) in database.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    assert database.rows("SELECT max(version) FROM schema_migrations") == [(len(MIGRATIONS),)]


class _PlanTx:
    """A transaction that plans each statement instead of running it."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, statement: str, params: tuple[object, ...] = ()) -> list[object]:
        plan = self.conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        self.plans.append(" ".join(row[3] for row in plan))
        return []


def test_the_inbox_reads_its_partial_indexes(tmp_path: Path) -> None:
    """Without them, the danger-now box on every inbox page and an empty overdue view read
    every report (bench/inbox.py)."""
    from form_service.storage import staff as records

    async def plans() -> list[str]:
        with closing(connect(tmp_path / "db.sqlite3")) as conn:
            migrate(conn, NOW)
            tx = _PlanTx(conn)
            await records.urgent_unacknowledged(tx)  # type: ignore[arg-type]
            for view in ("open", "overdue"):
                await records.inbox_page(tx, view, ("x",) * (view == "overdue"), None, 51)  # type: ignore[arg-type]
            return tx.plans

    urgent, open_view, overdue = anyio.run(plans)
    assert "USING INDEX reports_urgent" in urgent
    assert "USING INDEX reports_open" in open_view and "USING INDEX reports_open" in overdue

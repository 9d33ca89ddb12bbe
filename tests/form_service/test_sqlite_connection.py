"""Every SQLite connection of the store is durable and overwrites what it deletes."""

from __future__ import annotations

from pathlib import Path

from form_service.storage.sqlite import connect


def test_connections_are_durable_and_overwrite_deleted_content(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db" / "reports.db")
    try:
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()

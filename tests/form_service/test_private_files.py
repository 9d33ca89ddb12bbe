"""Making files private never disturbs SQLite's locks."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from form_service import private_files
from form_service.private_files import private_database


def test_an_open_database_is_made_private_by_name_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing any descriptor of a database drops every POSIX lock this process's SQLite
    # connections hold on it: another process could then remove the WAL under them.
    database = tmp_path / "reports.sqlite3"
    database.write_bytes(b"")
    os.chmod(database, 0o644)
    (tmp_path / "reports.sqlite3-wal").write_bytes(b"")
    opened: list[Any] = []
    real_open = os.open

    def watch(path: Any, flags: int, *args: Any) -> int:
        fd = real_open(path, flags, *args)
        opened.append(path)  # a descriptor was made, to be closed later
        return fd

    monkeypatch.setattr(private_files.os, "open", watch)
    private_database(database)
    assert opened == [], "the existing database was opened"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "reports.sqlite3-wal").stat().st_mode) == 0o600

"""The WAL is copied into the database file beside the commits, never inside them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

from form_service.storage.checkpointer import Checkpointer
from form_service.storage.sqlite import SqliteStore


def test_pokes_while_a_checkpoint_runs_make_one_more_and_stop_ends_the_thread() -> None:
    running = threading.Event()
    release = threading.Event()
    runs: list[int] = []

    def checkpoint() -> None:
        runs.append(1)
        running.set()
        release.wait(30)

    checkpointer = Checkpointer(checkpoint, gap=0)
    checkpointer.poke()
    assert running.wait(30), "a poke did not start a checkpoint"
    for _ in range(5):  # commits while it runs: one checkpoint after it covers them all
        checkpointer.poke()
    running.clear()
    release.set()
    assert running.wait(30), "pokes during a checkpoint were lost"
    checkpointer.stop()
    assert len(runs) == 2


def test_a_failed_checkpoint_leaves_the_thread_running() -> None:
    done = threading.Event()
    runs: list[int] = []

    def checkpoint() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise sqlite3.OperationalError("database is locked")
        done.set()

    checkpointer = Checkpointer(checkpoint, gap=0)
    checkpointer.poke()
    deadline = time.monotonic() + 30
    while not runs and time.monotonic() < deadline:
        time.sleep(0.01)
    checkpointer.poke()
    assert done.wait(30)
    checkpointer.stop()


def test_the_store_checkpoints_after_its_commits_and_not_within_them(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    store = SqliteStore(path)
    piece = b"x" * (1024 * 1024)

    async def run() -> tuple[int, int]:
        await store.open()
        try:
            conn = store._conn
            assert conn is not None
            autocheckpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            await store.write(
                [("CREATE TABLE t (data BLOB)", ())]
                + [("INSERT INTO t (data) VALUES (?)", (piece,))] * 5
            )
            # The database file takes the 5 MiB once the checkpointer has copied them.
            deadline = time.monotonic() + 30
            while path.stat().st_size < 5 * len(piece) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # Measured while open: closing the last connection checkpoints anyway.
            return autocheckpoint, path.stat().st_size
        finally:
            await store.close()

    autocheckpoint, size = asyncio.run(run())
    assert autocheckpoint == 0, "commits of the write connection still checkpoint"
    assert size >= 5 * len(piece), "the WAL was not copied while the store was open"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (5,)

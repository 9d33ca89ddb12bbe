"""Group commit: waiting writes share one transaction; each is undone alone if it fails."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from form_service.storage.sqlite import connect
from form_service.storage.writer import _MAX_BATCH, _SMALL_IN_A_ROW, GroupCommitWriter

MiB = 1024 * 1024


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(tmp_path / "w.sqlite3")
    conn.execute("CREATE TABLE t (n INTEGER UNIQUE)")
    yield conn
    conn.close()


def count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as other:
        return int(other.execute("SELECT count(*) FROM t").fetchone()[0])


async def fifty_writes(conn: sqlite3.Connection, writer: GroupCommitWriter) -> list[int]:
    """Fifty inserts; all but the first queue up while the first is written."""

    def insert(n: int) -> int:
        if n == 0:
            time.sleep(0.05)  # the others queue up meanwhile
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n

    first = asyncio.ensure_future(writer.run(lambda c: insert(0)))
    await asyncio.sleep(0.01)
    rest = [writer.run(lambda c, n=n: insert(n)) for n in range(1, 50)]
    return [await first, *await asyncio.gather(*rest)]


def test_concurrent_writes_share_commits(conn: sqlite3.Connection, tmp_path: Path) -> None:
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    writer = GroupCommitWriter(conn)

    assert asyncio.run(fifty_writes(conn, writer)) == list(range(50))
    writer.stop()
    assert count(tmp_path / "w.sqlite3") == 50
    assert len(commits) <= 3


def test_a_batch_is_answered_with_one_wake_up_of_the_loop(conn: sqlite3.Connection) -> None:
    writer = GroupCommitWriter(conn)
    wake_ups: list[int] = []

    class CountingLoop(asyncio.SelectorEventLoop):
        def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name == "sqlite-writer":
                wake_ups.append(1)
            return super().call_soon_threadsafe(*args, **kwargs)

    loop = CountingLoop()
    try:
        assert loop.run_until_complete(fifty_writes(conn, writer)) == list(range(50))
    finally:
        loop.close()
    writer.stop()
    assert len(wake_ups) <= 3  # one per commit, not one per write


def test_a_failing_write_is_undone_alone(conn: sqlite3.Connection, tmp_path: Path) -> None:
    writer = GroupCommitWriter(conn)

    def insert(n: int) -> None:
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        if n == 2:
            conn.execute("INSERT INTO t (n) VALUES (1)")  # a duplicate: this job fails

    async def main() -> list[object]:
        jobs = [writer.run(lambda c, n=n: insert(n)) for n in (1, 2, 3)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    writer.stop()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    with closing(sqlite3.connect(tmp_path / "w.sqlite3")) as other:
        assert sorted(r[0] for r in other.execute("SELECT n FROM t")) == [1, 3]


def test_the_answer_comes_after_the_commit(conn: sqlite3.Connection, tmp_path: Path) -> None:
    writer = GroupCommitWriter(conn)

    async def main() -> int:
        await writer.run(lambda c: c.execute("INSERT INTO t (n) VALUES (7)"))
        return count(tmp_path / "w.sqlite3")  # another connection already sees it

    assert asyncio.run(main()) == 1
    writer.stop()
    assert not writer.alive()


def test_a_cancelled_caller_does_not_undo_the_others(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    writer = GroupCommitWriter(conn)

    def slow_insert(n: int) -> None:
        time.sleep(0.05)
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))

    async def main() -> None:
        doomed = asyncio.ensure_future(writer.run(lambda c: slow_insert(1)))
        kept = asyncio.ensure_future(writer.run(lambda c: slow_insert(2)))
        await asyncio.sleep(0.01)
        doomed.cancel()
        await kept

    asyncio.run(main())
    writer.stop()
    # The cancelled caller hears nothing, but its write was already queued and is kept.
    assert count(tmp_path / "w.sqlite3") == 2


async def queued_behind_a_slow_write(writer: GroupCommitWriter, sizes: list[int]) -> None:
    """One insert per size, all queued while a first write (of no size) is held."""
    started, release = threading.Event(), threading.Event()

    def held(c: sqlite3.Connection) -> None:
        started.set()
        assert release.wait(30), "the test never let the first write go"
        c.execute("INSERT INTO t (n) VALUES (-1)")

    first = asyncio.ensure_future(writer.run(held))
    assert await asyncio.to_thread(started.wait, 30), "the first write never started"

    def insert(n: int) -> Callable[[sqlite3.Connection], None]:
        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t (n) VALUES (?)", (n,))

        return write

    rest = [asyncio.ensure_future(writer.run(insert(n), size)) for n, size in enumerate(sizes)]
    await asyncio.sleep(0)  # each task has queued its job
    release.set()
    await asyncio.gather(first, *rest)


@pytest.mark.parametrize(("size", "commits_of_six"), [(0, 1), (6 * MiB, 3), (20 * MiB, 6)])
def test_large_writes_are_split_into_batches(
    conn: sqlite3.Connection, tmp_path: Path, size: int, commits_of_six: int
) -> None:
    """Six writes queued behind one: without sizes they share one commit; at 6 MiB each
    a batch holds two (_BATCH_BYTES, 16 MiB), and a write larger than that is alone."""
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    writer = GroupCommitWriter(conn)

    asyncio.run(queued_behind_a_slow_write(writer, [size] * 6))
    writer.stop()
    assert count(tmp_path / "w.sqlite3") == 7
    assert len(commits) == 1 + commits_of_six  # the held write's commit, then the six's


def commit_of_each_insert(order: list[str]) -> dict[int, int]:
    """For each value inserted into t, the number of the commit that took it (from 0)."""
    commits, found = 0, {}
    for sql in order:
        if sql == "COMMIT":
            commits += 1
        elif (insert := re.fullmatch(r"INSERT INTO t \(n\) VALUES \((-?\d+)\)", sql)) is not None:
            found[int(insert.group(1))] = commits
    return found


def traced(conn: sqlite3.Connection) -> list[str]:
    order: list[str] = []
    conn.set_trace_callback(
        lambda sql: order.append(sql) if sql == "COMMIT" or sql.startswith("INSERT") else None
    )
    return order


def test_a_report_queued_behind_many_files_waits_for_no_commit_of_theirs(
    conn: sqlite3.Connection,
) -> None:
    """Three 10 MiB files, then a report, queued while a write is in flight: the report
    gets the next commit, not the one after the files (a receipt waits for the commit in
    flight only)."""
    order = traced(conn)
    writer = GroupCommitWriter(conn)

    asyncio.run(queued_behind_a_slow_write(writer, [10 * MiB] * 3 + [0]))
    writer.stop()
    commit_of = commit_of_each_insert(order)
    assert commit_of[-1] == 0  # the held write
    assert commit_of[3] == 1  # the report
    assert sorted(commit_of[n] for n in range(3)) == [2, 3, 4]


def test_a_file_waits_for_a_bounded_number_of_small_commits(
    conn: sqlite3.Connection,
) -> None:
    """A file queued with more small writes than fit in many commits still goes after at
    most _SMALL_IN_A_ROW small commits, the write in flight included."""
    order = traced(conn)
    writer = GroupCommitWriter(conn)
    smalls = 6 * _MAX_BATCH

    asyncio.run(queued_behind_a_slow_write(writer, [MiB] + [0] * smalls))
    writer.stop()
    commit_of = commit_of_each_insert(order)
    assert len(commit_of) == 2 + smalls
    assert commit_of[0] == _SMALL_IN_A_ROW
    assert max(commit_of.values()) > _SMALL_IN_A_ROW  # small writes were still waiting


def test_reports_queued_with_files_are_committed_before_them(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    """Writes of no size (reports) queued among file writes get a commit of their own,
    before the files': a receipt does not wait for the files' bytes to reach the disk."""
    order: list[str] = []
    conn.set_trace_callback(
        lambda sql: order.append(sql) if sql == "COMMIT" or sql.startswith("INSERT") else None
    )
    writer = GroupCommitWriter(conn)

    asyncio.run(queued_behind_a_slow_write(writer, [1024 * 1024, 0, 1024 * 1024, 0]))
    writer.stop()
    assert count(tmp_path / "w.sqlite3") == 5
    commits = [i for i, sql in enumerate(order) if sql == "COMMIT"]
    assert len(commits) == 3  # the held write's, then the reports', then the files'
    reports = order[commits[0] + 1 : commits[1]]
    files = order[commits[1] + 1 : commits[2]]
    assert reports == ["INSERT INTO t (n) VALUES (1)", "INSERT INTO t (n) VALUES (3)"]
    assert files == ["INSERT INTO t (n) VALUES (0)", "INSERT INTO t (n) VALUES (2)"]

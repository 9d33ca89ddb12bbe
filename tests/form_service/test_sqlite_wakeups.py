"""Wake-ups between processes sharing one SQLite file: named pipes beside the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from form_service.storage.sqlite_wakeups import Wakeups, wakeups_beside


async def _listening(folder: Path) -> tuple[asyncio.Event, asyncio.Task[None]]:
    event = asyncio.Event()
    task = asyncio.create_task(Wakeups(folder).listen(event))
    for _ in range(100):  # until its pipe is in place
        if folder.is_dir() and any(not n.startswith(".") for n in os.listdir(folder)):
            return event, task
        await asyncio.sleep(0.01)
    raise AssertionError("the listener made no pipe")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_notify_wakes_every_listener_and_a_stopped_one_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "reports.sqlite3-wakeups"

    async def scenario() -> None:
        (first, one), (second, two) = await _listening(folder), await _listening(folder)
        await asyncio.sleep(0.05)
        assert not first.is_set() and not second.is_set()
        Wakeups(folder).notify()
        await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 2)
        await _stop(one)
        await _stop(two)

    asyncio.run(scenario())
    assert os.listdir(folder) == []


def test_another_process_wakes_the_listener(tmp_path: Path) -> None:
    database = tmp_path / "reports.sqlite3"
    code = (
        "import sys; from pathlib import Path;"
        "from form_service.storage.sqlite_wakeups import wakeups_beside;"
        "wakeups_beside(Path(sys.argv[1])).notify()"
    )

    async def scenario() -> None:
        event, task = await _listening(wakeups_beside(database).folder)
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(database))
        assert await process.wait() == 0
        await asyncio.wait_for(event.wait(), 2)
        await _stop(task)

    asyncio.run(scenario())


def test_notify_without_listeners_or_with_a_dead_one_never_blocks(tmp_path: Path) -> None:
    folder = tmp_path / "wakeups"
    Wakeups(folder).notify()  # no folder yet: nobody ever listened
    folder.mkdir()
    os.mkfifo(folder / "4242-deadbeef")  # a worker that was killed: no reader
    os.mkfifo(folder / ".4243-setting-up")  # one still being set up is left alone
    Wakeups(folder).notify()
    assert os.listdir(folder) == [".4243-setting-up"]


def test_a_full_pipe_is_skipped_and_one_wake_up_stays(tmp_path: Path) -> None:
    folder = tmp_path / "wakeups"

    async def scenario() -> None:
        event, task = await _listening(folder)
        (pipe,) = folder.iterdir()
        # The listener reads nothing while this runs: fill its pipe, then notify on.
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        for _ in range(10):
            Wakeups(folder).notify()
        await asyncio.wait_for(event.wait(), 2)
        event.clear()
        await asyncio.sleep(0.05)
        assert not event.is_set()  # the pipe was emptied in one go
        await _stop(task)

    asyncio.run(scenario())


def test_the_pipes_are_private_to_the_service_user(tmp_path: Path) -> None:
    folder = tmp_path / "wakeups"

    async def scenario() -> None:
        _, task = await _listening(folder)
        (pipe,) = folder.iterdir()
        assert folder.stat().st_mode & 0o777 == 0o700
        assert pipe.stat().st_mode & 0o777 == 0o600
        await _stop(task)

    asyncio.run(scenario())


def test_reports_committed_together_wake_each_worker_once(tmp_path: Path) -> None:
    folder = tmp_path / "wakeups"
    folder.mkdir()
    os.mkfifo(folder / "4242-cafe")
    reader = os.open(folder / "4242-cafe", os.O_RDONLY | os.O_NONBLOCK)

    async def scenario() -> None:
        wakeups = Wakeups(folder)
        for _ in range(50):  # a group commit answers fifty reports in one turn
            wakeups.notify_soon()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        wakeups.notify_soon()  # a later commit wakes the worker again
        await asyncio.sleep(0)

    try:
        asyncio.run(scenario())
        assert os.read(reader, 4096) == b"\0\0"
    finally:
        os.close(reader)

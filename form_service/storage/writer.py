"""Group commit: one thread owns the write connection and commits what is waiting together.

With synchronous=FULL every commit waits for the disk (an fsync). Reports that arrive
while a commit is in flight are written together in the next transaction, so many
reports share one fsync instead of queueing for one each. Each operation runs inside its
own SAVEPOINT, so one that fails (a duplicate, a bug) is undone alone; callers are answered
only after the COMMIT has returned, which keeps "acknowledged means on disk".

An operation may say how many bytes it writes (a file's pieces). Those are committed apart
from the operations that write no such bytes (reports, marks, the team's changes), in
batches of at most _BATCH_BYTES (or one operation larger than that), and the small ones
go first: under a burst of photos, a receipt waits for the commit in flight, not for
every file queued before it. A small commit takes a few milliseconds and a photo's about
a hundred, so a file waits for at most _SMALL_IN_A_ROW small commits, never for ever
behind a stream of them.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
_MAX_BATCH = 128
_BATCH_BYTES = 16 * 1024 * 1024
"""About one phone photo: a commit's disk time grows with its bytes."""
_SMALL_IN_A_ROW = 4
"""Small commits that may go before a waiting file's."""


@dataclass
class _Job:
    operation: Operation
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    size: int = 0


_Answer = tuple[asyncio.Future[Any], bool, Any]
"""A caller's future, whether its operation succeeded, and its result or error."""


def _settle(answers: list[_Answer]) -> None:
    for future, ok, value in answers:
        if future.done():  # the caller gave up waiting (cancelled)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class GroupCommitWriter:
    def __init__(
        self, conn: sqlite3.Connection, after_commit: Callable[[], None] = lambda: None
    ) -> None:
        self._conn = conn
        self._after_commit = after_commit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="sqlite-writer", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    async def run(self, operation: Callable[[sqlite3.Connection], T], size: int = 0) -> T:
        """*operation*'s result once it is committed; *size*: about how many bytes it writes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(operation, future, loop, size))
        return await future

    def stop(self) -> None:
        """Finish what is queued, then end the thread (blocking; call from a worker thread)."""
        self._jobs.put(None)
        self._thread.join()

    def _loop(self) -> None:
        small: deque[_Job] = deque()
        large: deque[_Job] = deque()
        small_in_a_row = 0
        stopping = False
        while True:
            if not small and not large:
                if stopping:
                    return
                job = self._jobs.get()
                if job is None:
                    return
                (large if job.size else small).append(job)
            stopping = self._take_waiting(small, large) or stopping
            if small and (small_in_a_row < _SMALL_IN_A_ROW or not large):
                self._commit([small.popleft() for _ in range(min(len(small), _MAX_BATCH))])
                small_in_a_row += 1
            else:
                self._commit(_bytes_batch(large))
                small_in_a_row = 0

    def _take_waiting(self, small: deque[_Job], large: deque[_Job]) -> bool:
        """Move every queued job into *small* or *large*; True if stop() was called."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            (large if job.size else small).append(job)

    def _commit(self, batch: list[_Job]) -> None:
        conn = self._conn
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((True, job.operation(conn)))
                except Exception as error:
                    conn.execute("ROLLBACK TO job")
                    results.append((False, error))
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
            self._after_commit()
        except Exception as error:
            # Nothing of this batch is on disk: every caller hears so.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(False, error)] * len(batch)
        # One wake-up of each event loop for the whole batch: each call_soon_threadsafe
        # writes to the loop's wake-up socket, a system call per answer otherwise.
        answers: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for job, (ok, value) in zip(batch, results, strict=True):
            answers.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in answers.items():
            loop.call_soon_threadsafe(_settle, settled)


def _bytes_batch(large: deque[_Job]) -> list[_Job]:
    """The first job of *large*, and those after it while the batch stays within
    _BATCH_BYTES (taken off *large*)."""
    batch = [large.popleft()]
    size = batch[0].size
    while large and len(batch) < _MAX_BATCH and size + large[0].size <= _BATCH_BYTES:
        size += large[0].size
        batch.append(large.popleft())
    return batch

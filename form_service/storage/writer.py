"""Group commit: one thread owns the write connection and commits what is waiting together.

With synchronous=FULL every commit waits for the disk (an fsync). Reports that arrive
while a commit is in flight are written together in the next transaction, so many
reports share one fsync instead of queueing for one each. Each operation runs inside its
own SAVEPOINT, so one that fails (a duplicate, a bug) is undone alone; callers are answered
only after the COMMIT has returned, which keeps "acknowledged means on disk".

An operation may say how many bytes it writes (a file's pieces): a batch takes no more
operations once it holds _BATCH_BYTES, so a report queued behind many large files waits
for one commit of them, not all; and the operations of a batch that write no such bytes
(reports) are committed first, in a commit of their own.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
_MAX_BATCH = 128
_BATCH_BYTES = 16 * 1024 * 1024


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
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            size = first.size
            stopping = False
            while len(batch) < _MAX_BATCH and size < _BATCH_BYTES:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
                size += job.size
            # Reports first: a receipt waits for one small commit, not for files' bytes.
            small = [job for job in batch if not job.size]
            if small and len(small) < len(batch):
                self._commit(small)
                batch = [job for job in batch if job.size]
            self._commit(batch)
            if stopping:
                return

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

"""Copying SQLite's WAL into the database file beside the commits, not inside them.

By default SQLite checkpoints (copies the WAL into the database file, then syncs it) inside
the commit that takes the WAL past 1,000 pages: that commit, a tipster waiting for a
receipt, then waits for the copy as well, about twice as long for a photo's 5 MB. The
write connection turns that off (``wal_autocheckpoint = 0``) and pokes a ``Checkpointer``
after each commit instead: a thread of its own that checkpoints on a connection of its own,
PASSIVE (it waits for no reader or writer), at most once every ``GAP_SECONDS``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from form_service.logs import log_event

GAP_SECONDS = 0.5


class Checkpointer:
    def __init__(self, checkpoint: Callable[[], None], gap: float = GAP_SECONDS) -> None:
        self._checkpoint = checkpoint
        self._gap = gap
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Something was committed: checkpoint soon."""
        self._due.set()

    def stop(self) -> None:
        """End the thread (blocking; call from a worker thread)."""
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self._due.wait()
            if self._stopping.is_set():
                return
            self._due.clear()
            try:
                self._checkpoint()
            except sqlite3.Error as error:
                # The next commit pokes again; the store's chores truncate the WAL too.
                log_event("checkpoint_failed", logging.WARNING, error=type(error).__name__)
            if self._stopping.wait(self._gap):
                return

"""Wake-ups between processes that share one SQLite file: the embedded store's NOTIFY.

A delivery worker in its own process (`outreach worker`, or a second `outreach serve`)
would otherwise find a report stored by another process only at its next poll. Each
listening worker makes a named pipe (FIFO) in a folder beside the database; a process that
commits a report writes one byte to every pipe there, without blocking. The byte carries
nothing but "look at the outbox": no report, no client, nothing to leak.

A pipe is put in place only once its reader is open, so a writer that finds no reader on a
pipe knows its worker has gone and removes it. A pipe already holding a byte needs no
second one: a full pipe is skipped. A group commit answers many reports in one turn of the
event loop; ``notify_soon`` wakes the workers once for all of them.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
from contextlib import suppress
from pathlib import Path

from form_service.private_files import private_folder

_WAKE = b"\0"


class Wakeups:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending = False

    def notify_soon(self) -> None:
        """notify() once, after whatever else commits in this turn of the event loop (each
        notify lists the folder, which costs more than the rest of a report's wake-up)."""
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._notify_pending)

    def _notify_pending(self) -> None:
        self._pending = False
        self.notify()

    def notify(self) -> None:
        """Wake every listening worker; never blocks, never fails the caller."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return  # nobody has listened yet
        for name in names:
            if not name.startswith("."):  # a pipe still being set up
                self._wake(self.folder / name)

    @staticmethod
    def _wake(pipe: Path) -> None:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no reader: its worker has stopped or died
                with suppress(OSError):
                    pipe.unlink()
            return
        try:
            os.write(fd, _WAKE)
        except OSError:
            pass  # full (a wake-up is already waiting) or the reader just went away
        finally:
            os.close(fd)

    async def listen(self, wakeup: asyncio.Event) -> None:
        """Set *wakeup* whenever another process (or this one) notifies, until cancelled."""
        private_folder(self.folder)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        setting_up = self.folder / f".{name}"
        os.mkfifo(setting_up, 0o600)
        reader = os.open(setting_up, os.O_RDONLY | os.O_NONBLOCK)
        # Held open so the reader never sees end-of-file between two writers.
        keeper = os.open(setting_up, os.O_WRONLY | os.O_NONBLOCK)
        pipe = self.folder / name
        os.rename(setting_up, pipe)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            with suppress(BlockingIOError):
                while os.read(reader, 4096):
                    pass
            wakeup.set()

        loop.add_reader(reader, readable)
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            loop.remove_reader(reader)
            os.close(reader)
            os.close(keeper)
            with suppress(OSError):
                pipe.unlink()


def wakeups_beside(database: Path) -> Wakeups:
    return Wakeups(database.with_name(database.name + "-wakeups"))

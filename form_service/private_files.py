"""The data dir is the service user's alone: folders 0700, files 0600, whatever the umask.

Whichever command makes the data dir first (a site build into ``var/site``, ``serve``,
``worker``, ``purge``, ``staff``, …) makes it private, and each thing made in it (the
database and SQLite's ``-wal`` and ``-shm`` beside it, the development secret, maildir
folders and messages, the wake-up pipes) is made private too: another user of the machine
must not read reports, receipts' hashes or partner mail. A folder or file an older version
left readable is made private when it is next used.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
# SQLite makes these beside a database in WAL mode, with the database file's own mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_folder(path: Path) -> Path:
    """*path*, made with any missing parents if need be, and the owner's alone."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> None:
    """*path* made empty if missing, and the owner's alone either way.

    An existing file is changed by its name only, never opened: closing any descriptor of
    a database would drop the POSIX locks that SQLite's connections in this process hold
    on it, and another process could then checkpoint or remove the WAL under them."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        os.chmod(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def private_database(path: Path) -> None:
    """A SQLite file and its companions, before this process's SQLite opens them: it gives
    a new -wal or -shm the database's mode, so one made private first keeps them private.
    A folder that already holds it is the operator's choice (the data dir is made private
    apart)."""
    if not path.parent.exists():
        private_folder(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.chmod(companion, FILE_MODE)


def private_tree(root: Path) -> None:
    """Every folder under *root* (itself included) 0700 and every file 0600."""
    os.chmod(root, FOLDER_MODE)
    for folder, folders, files in os.walk(root):
        for name in folders:
            os.chmod(os.path.join(folder, name), FOLDER_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), FILE_MODE)


def is_inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())

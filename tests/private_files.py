"""Checks that a data dir is its owner's alone, shared by the command and server suites."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def loose_modes(data_dir: Path) -> list[tuple[str, str]]:
    """Everything in *data_dir* (itself included) that is not 0700 (folders) or 0600."""
    loose = []
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue  # a Maildir file moved from tmp/ to new/ while the folder was read

        if mode != (0o700 if path.is_dir() else 0o600):
            loose.append((str(path.relative_to(data_dir.parent)), oct(mode)))
    return loose


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask (inherited by subprocesses) set to *mask* for the block."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)

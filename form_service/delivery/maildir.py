"""Delivery into a local Maildir: the demo's channel, and the one for air-gapped sites.

The file's name is the delivery id (random: it holds no time), so a retry after a crash
finds the message already there instead of adding a second copy, and a file is in new/
only once it is on disk. The file's times are those of the minute it was written, which
is what retention goes by: `outreach purge` deletes the messages the kit wrote (named by a
delivery id, in new/ or, read, in cur/) once that minute is past the retention period.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.files import files_for
from form_service.delivery.message import (
    RenderedMessage,
    agency_sender,
    email_bytes,
    message_domain,
    render_message,
    to_email,
)
from form_service.delivery.payload import DeliveryPayload
from form_service.private_files import FILE_MODE, private_folder
from outreach.profile import DeliveryConfig, Partner


async def send(payload: DeliveryPayload, partner: Partner, settings: DeliverySettings) -> None:
    files = await files_for(payload, partner, settings)
    rendered = render_message(payload, partner, settings.profile, files)
    await send_rendered(rendered, partner.delivery, settings)


async def send_rendered(
    rendered: RenderedMessage, delivery: DeliveryConfig, settings: DeliverySettings
) -> None:
    config = delivery.maildir
    if config is None:
        raise DeliveryFailed("no maildir settings")
    profile = settings.profile
    mail = to_email(
        rendered, sender=agency_sender(profile), to=rendered.to, domain=message_domain(profile)
    )
    try:
        folder = settings.maildir_root / config.folder
        # fsync blocks; the event loop keeps serving the form meanwhile.
        data = email_bytes(mail, rendered.files)
        await asyncio.to_thread(store, folder, rendered.delivery_id, data)
    except OSError as error:
        raise DeliveryFailed(f"cannot write to the maildir: {error.strerror}") from None


def store(folder: Path, key: str, data: bytes) -> bool:
    """Put the message *data* in the Maildir *folder* under *key*; False when it was already
    there."""
    _make_folder(folder)
    if already_there(folder, key):
        return False
    tmp = folder / "tmp" / f"{key}.{os.getpid()}"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb") as handle:
        handle.write(data)
        handle.flush()
        # The file's times to the minute, like the message's Date: mail clients show them,
        # and to the second they would time the report that a network log could match.
        minute = time.time() // 60 * 60
        os.utime(handle.fileno(), (minute, minute))
        os.fsync(handle.fileno())
    try:
        # link() refuses an existing name, so two workers racing leave one copy.
        os.link(tmp, folder / "new" / key)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    _fsync_dir(folder / "new")
    return True


def already_there(folder: Path, key: str) -> bool:
    """In new/, or already read and moved to cur/ by a mail client."""
    if (folder / "new" / key).exists():
        return True
    # A file in cur/ is named key:2,flags.
    return any(name.split(":", 1)[0] == key for name in os.listdir(folder / "cur"))


def _make_folder(folder: Path) -> None:
    # Every time: someone may have cleared the mail since the last message.
    # Mail about reports is for its readers only: folders are the owner's alone.
    # *folder* is <data dir>/maildir/<name>. The data dir first: mkdir would give missing
    # parents the umask's mode.
    private_folder(folder.parent.parent)
    for path in (folder.parent, folder, folder / "tmp", folder / "new", folder / "cur"):
        private_folder(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def purge(folders: Iterable[Path], cutoff: float) -> int:
    """Delete the messages the kit wrote into *folders* last changed before *cutoff* (a
    Unix time); how many."""
    removed = 0
    for folder in folders:
        for entry in _entries(folder / "new") + _entries(folder / "cur"):
            if _written_by_kit(entry.name) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
    return removed


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as found:
            return [entry for entry in found if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _written_by_kit(name: str) -> bool:
    """Named by a delivery id (a UUID), with a mail client's :2,flags after it in cur/."""
    key = name.split(":", 1)[0]
    try:
        return str(uuid.UUID(key)) == key
    except ValueError:
        return False

"""Delivery into a local Maildir: the demo's channel, and the one for air-gapped sites.

The file's name is the delivery id, so a retry after a crash finds the message already
there instead of adding a second copy, and a file is in new/ only once it is on disk.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
from email.message import EmailMessage
from pathlib import Path

from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.message import (
    RenderedMessage,
    agency_sender,
    message_domain,
    render_message,
    to_email,
)
from form_service.delivery.payload import DeliveryPayload
from outreach.profile import Partner


async def send(payload: DeliveryPayload, partner: Partner, settings: DeliverySettings) -> None:
    await send_rendered(render_message(payload, partner, settings.profile), partner, settings)


async def send_rendered(
    rendered: RenderedMessage, partner: Partner, settings: DeliverySettings
) -> None:
    config = partner.delivery.maildir
    if config is None:
        raise DeliveryFailed("partner has no maildir settings")
    profile = settings.profile
    mail = to_email(rendered, sender=agency_sender(profile), to=[], domain=message_domain(profile))
    try:
        folder = settings.maildir_root / config.folder
        # fsync blocks; the event loop keeps serving the form meanwhile.
        await asyncio.to_thread(store, folder, rendered.delivery_id, mail)
    except OSError as error:
        raise DeliveryFailed(f"cannot write to the maildir: {error.strerror}") from None


def store(folder: Path, key: str, mail: EmailMessage) -> bool:
    """Put *mail* in the Maildir *folder* under *key*; False when it was already there."""
    # Mail about reports is for its readers only: folders are the owner's alone.
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    box = mailbox.Maildir(folder, create=True)
    if key in box:  # in new/, or already read and moved to cur/
        return False
    data = mail.as_bytes()
    tmp = folder / "tmp" / f"{key}.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""What every delivery channel shares: its settings and the one way it reports a failure."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from form_service.delivery.payload import DeliveryPayload, SharedFile
from form_service.delivery.smtp_sessions import SmtpSessions
from outreach.profile import Profile


class DeliveryFailed(Exception):
    """A delivery that did not happen; ``reason`` is for the log and the audit trail.

    A reason names the channel's problem (refused connection, HTTP status, missing
    setting), never anything from the report.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileNotReady(Exception):
    """A file of the delivery is still being cleaned (form_service/waiting_files.py): the
    delivery waits for it, and this does not count as a failed attempt."""


class FileSource(Protocol):
    @property
    def turn(self) -> asyncio.Semaphore:
        """Taken by each delivery that carries files: one at a time."""

    async def read(self, file: SharedFile) -> bytes:
        """The cleaned file's bytes; DeliveryFailed when they cannot be read."""

    async def deliverable(self, payload: DeliveryPayload) -> DeliveryPayload:
        """*payload* with only the files that can be sent (a photo that failed to decode
        after the receipt is left out); FileNotReady while one is still being cleaned."""

    async def keep_for_partner(self, payload: DeliveryPayload, intake: str) -> None:
        """Seal the payload's files to its partner's users, for their inbox."""

    async def release(self, report_ref: str) -> None:
        """Forget the report's files for delivery once none of its deliveries waits."""


@dataclass(frozen=True)
class DeliverySettings:
    profile: Profile
    data_dir: Path
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Where channels read the secrets the profile names (SMTP password, webhook secret)."""
    tls_context: ssl.SSLContext | None = None
    """Certificate trust for SMTP; None: the system's trust store (tests pass a test CA)."""
    timeout: float = 30.0
    """Seconds one attempt may take before it counts as failed."""
    smtp_sessions: SmtpSessions | None = field(default=None, compare=False)
    """Sessions kept open between messages (the worker's); None: one session per message."""
    secret_keys: tuple[str, ...] = ()
    """The service's secrets: the delivery copies of attached files open with one of them."""
    held_files_seconds: int = 14400
    """How long files sent with a form stay held for it (the form token's lifetime)."""
    file_source: FileSource | None = field(default=None, compare=False)
    """Where the files a payload lists are read from (the worker sets the store's)."""

    def secret(self, name: str | None) -> str | None:
        """The value of the environment variable *name*; a clear failure when it is unset."""
        if name is None:
            return None
        value = self.environ.get(name)
        if not value:
            raise DeliveryFailed(f"environment variable {name} is not set")
        return value

    @property
    def maildir_root(self) -> Path:
        return maildir_root(self.data_dir)


def maildir_root(data_dir: Path) -> Path:
    """The folder of every Maildir the kit delivers into."""
    return data_dir / "maildir"

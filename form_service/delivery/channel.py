"""What every delivery channel shares: its settings and the one way it reports a failure."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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

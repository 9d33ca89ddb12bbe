"""Open SMTP sessions kept between messages to the same relay.

A new session costs a TCP connect, two EHLOs, a TLS handshake and a login; a backlog of
thousands of messages after an outage would spend most of its time on those. The worker
keeps up to ``per_server`` sessions per relay and account while it is busy and closes them
when it goes idle. A session is only reused after a message it carried was accepted.

Eight sessions: an agency often sends every partner's mail through its one relay, so this
is the whole pipe for a backlog; each session waits a round trip per SMTP command, and
eight stay well under the per-client connection limits relays set (Postfix allows 50).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress

import aiosmtplib

Key = tuple[str, int, str, str]
"""(host, port, security, username): what makes two sessions interchangeable."""

# Errors after which a kept session was probably closed by the server while it sat idle.
_STALE = (aiosmtplib.SMTPServerDisconnected, ConnectionError)


class SmtpSessions:
    def __init__(self, per_server: int = 8, idle_seconds: float = 30.0) -> None:
        self.per_server = per_server
        self.idle_seconds = idle_seconds
        self._idle: dict[Key, list[tuple[aiosmtplib.SMTP, float]]] = {}
        self._slots: dict[Key, asyncio.Semaphore] = {}

    async def send(
        self,
        key: Key,
        open_session: Callable[[], aiosmtplib.SMTP],
        sender: str,
        recipients: list[str],
        message: bytes,
    ) -> None:
        slot = self._slots.setdefault(key, asyncio.Semaphore(self.per_server))
        async with slot:
            kept = self._take(key)
            if kept is not None:
                try:
                    await kept.sendmail(sender, recipients, message)
                except _STALE:
                    _hang_up(kept)  # try once more on a fresh session below
                except BaseException:
                    _hang_up(kept)
                    raise
                else:
                    self._keep(key, kept)
                    return
            await self._send_fresh(key, open_session(), sender, recipients, message)

    async def _send_fresh(
        self,
        key: Key,
        session: aiosmtplib.SMTP,
        sender: str,
        recipients: list[str],
        message: bytes,
    ) -> None:
        try:
            await session.connect()
            await session.sendmail(sender, recipients, message)
        except BaseException:
            _hang_up(session)
            raise
        self._keep(key, session)

    def _take(self, key: Key) -> aiosmtplib.SMTP | None:
        sessions = self._idle.get(key, [])
        while sessions:
            session, since = sessions.pop()
            if session.is_connected and time.monotonic() - since < self.idle_seconds:
                return session
            _hang_up(session)
        return None

    def _keep(self, key: Key, session: aiosmtplib.SMTP) -> None:
        self._idle.setdefault(key, []).append((session, time.monotonic()))

    async def close(self) -> None:
        """Say QUIT on every kept session (the worker has nothing more to send)."""
        idle, self._idle = self._idle, {}
        for sessions in idle.values():
            for session, _ in sessions:
                transport = session.transport  # quit() forgets it
                with suppress(aiosmtplib.SMTPException, OSError):
                    await session.quit()
                _hang_up(session, transport)
        await asyncio.sleep(0)  # lets the aborted transports close their sockets


def _hang_up(session: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Drop the connection at once.

    The SMTP conversation is over (QUIT answered, or the send failed), so a TLS goodbye
    (close_notify both ways) adds nothing. aiosmtplib's close() starts that goodbye and
    returns; if the event loop ends first, as at shutdown, the socket is never closed.
    """
    transport = transport or session.transport
    session.close()
    if isinstance(transport, asyncio.Transport):
        transport.abort()

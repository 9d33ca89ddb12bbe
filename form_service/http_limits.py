"""Limits of the HTTP server, so that slow or greedy clients cannot hold it.

uvicorn limits the size of a request head (h11's incomplete-event size) and closes idle
keep-alive connections, but it has no deadline for a client that opens a connection and
then sends its request head one byte at a time ("slowloris"), nor for one that trickles
its body: each such connection stays open for as long as the client likes, and with
``limit_concurrency`` set, a few hundred of them would turn every tipster away with 503.

h11's size limit, too, only applies to a head that arrives in pieces: one that arrives in
a single read (64 KiB on a fast link) is accepted whatever its size. So the protocol also
counts the bytes of every request head itself and answers 431 past ``MAX_HEAD_BYTES``.

``DeadlineH11Protocol`` adds those deadlines to uvicorn's h11 protocol: the request head
must be complete within ``HEAD_TIMEOUT`` seconds of the connection opening (or of the
previous response on a kept-alive connection), and the body within ``BODY_TIMEOUT`` seconds
of the head, extended by as long again each time at least ``MIN_BODY_BYTES_PER_WINDOW``
of it arrived in the last one (attached videos take minutes on a slow link). A client
that misses one is disconnected; a handler still waiting for the
body then sees the client as gone. Nothing about the client is logged; the connections cut
are counted per minute (``connections_cut``, at debug level), not logged one by one.

While a request body larger than one read arrives, the connection reads ``BODY_READ_BYTES``
at a time instead of asyncio's 256 KiB: each read waits for its turn of the event loop,
behind whatever else arrived, so a 5 MB photo sent during a flood would otherwise wait for
twenty turns instead of five.

A request that frames its body twice, with both Content-Length and Transfer-Encoding, is
refused with 400 and its connection closed (RFC 9112 section 6.1): h11 would follow the
Transfer-Encoding, and a proxy in front that follows the Content-Length would then see a
different request (request smuggling).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from form_service.logs import MinuteTally

# The largest request head accepted (request line and headers); a larger one gets 400.
# Browsers send a few KiB; the site sets no cookies.
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
# A body still arriving when its deadline comes gets another BODY_TIMEOUT if at least this
# much of it came in the last one (a photo or video from a phone on a slow link, 16 KiB/s);
# a client trickling a few bytes is cut as before.
MIN_BODY_BYTES_PER_WINDOW = int(16 * 1024 * BODY_TIMEOUT)
# Body bytes read and dropped after an early answer (413 to a report with files too
# large) before the connection is closed: enough for a browser to finish sending a video
# a little too large and show the answer, not enough to keep a flood busy.
MAX_DRAIN_BYTES = 256 * 1024 * 1024
# Bytes read from a connection per turn of the event loop while a large body arrives; at
# most this much per upload waits in memory for the handler (uvicorn pauses reading then).
BODY_READ_BYTES = 1024 * 1024
KEEP_ALIVE_TIMEOUT = 5
# Connections plus running requests before new requests get 503 (uvicorn's limit_concurrency).
MAX_CONCURRENCY = 512
# Connections the kernel queues before the server accepts them.
BACKLOG = 1024
# How long a stopping server waits for running requests before it closes them.
GRACEFUL_SHUTDOWN_TIMEOUT = 10

LOGGER = logging.getLogger("uvicorn.error")
# Slow clients cut, counted per minute: a line each would let one client fill the log.
CUT = MinuteTally("connections_cut", level=logging.DEBUG)

# The blank line that ends a request head, as h11 finds it.
_END_OF_HEAD = re.compile(rb"\n\r?\n")
_TOO_LARGE = b"Request header fields too large\n"
_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Content-Length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _TOO_LARGE
)


class _SingleFraming(h11.Connection):
    """h11's connection, which refuses a request whose body is framed two ways."""

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding")
        return event


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for receiving the request head and body."""

    head_timeout: float = HEAD_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_head_bytes: int = MAX_HEAD_BYTES
    min_body_bytes_per_window: int = MIN_BODY_BYTES_PER_WINDOW
    max_drain_bytes: int = MAX_DRAIN_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn answers a RemoteProtocolError with 400 and closes the connection.
        self.conn = _SingleFraming(h11.SERVER, self.conn._max_incomplete_event_size)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: object = None
        self._head = b""
        self._refused = False
        self._body_bytes = 0
        """Bytes of the body received since its deadline was last armed."""
        self._drained = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self._refuse_head()
            return
        if self.conn.their_state is h11.SEND_BODY:
            self._body_bytes += len(data)
            if self.conn.our_state is h11.DONE and self._drain(len(data)):
                return
        super().data_received(data)
        self._watch()

    def _drain(self, size: int) -> bool:
        """Count body bytes that arrive after the answer (a 413 sent before the body was
        read: uvicorn drops them, so the client gets to read the answer rather than a reset
        connection); True once past ``MAX_DRAIN_BYTES``, with the connection closed."""
        self._drained += size
        if self._drained <= self.max_drain_bytes:
            return False
        self._cancel()
        CUT.add(drained=1)
        self.transport.close()
        return True

    def _head_too_large(self, data: bytes) -> bool:
        """Count the bytes of the request head being received; True once past the limit."""
        head = self._head + data
        end = _END_OF_HEAD.search(head)
        size = end.end() if end else len(head)
        self._head = b"" if end else head
        return size > self.max_head_bytes

    def _refuse_head(self) -> None:
        self._refused = True
        self._cancel()
        LOGGER.info("Refused a request head larger than %d bytes.", self.max_head_bytes)
        self.transport.write(_TOO_LARGE_RESPONSE)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline for what the client still owes us, or drop it if it owes nothing."""
        if self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            timeout = self.head_timeout
        elif state is h11.SEND_BODY:
            timeout = self.body_timeout
        else:
            self._cancel()
            return
        if self._waiting_for is not state:
            self._cancel()
            self._waiting_for = state
            self._body_bytes = 0
            self._deadline = self.loop.call_later(timeout, self._expire)
            # A body seen here did not come whole with its head: a large one.
            self._read_size(BODY_READ_BYTES if state is h11.SEND_BODY else None)

    def _read_size(self, size: int | None) -> None:
        """Read *size* bytes at a time (None: asyncio's own). Only asyncio's socket
        transport has this setting (its ``max_size``); another transport is left alone."""
        transport = self.transport
        if hasattr(transport, "max_size"):
            transport.max_size = size or type(transport).max_size

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = None

    def _expire(self) -> None:
        part = "head" if self._waiting_for is h11.IDLE else "body"
        if part == "body" and self._body_bytes >= self.min_body_bytes_per_window:
            self._body_bytes = 0  # a large body still coming at a fair pace: more time
            self._deadline = self.loop.call_later(self.body_timeout, self._expire)
            return
        self._deadline = None
        self._waiting_for = None
        if not self.transport.is_closing():
            CUT.add(**{part: 1})
            self.transport.close()

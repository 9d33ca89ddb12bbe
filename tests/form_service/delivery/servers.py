"""Real servers for delivery tests: an SMTP server (aiosmtpd), an HTTP receiver, a TLS CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ThrowawayCA:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path) -> ThrowawayCA:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Outreach test CA"))
        .issuer_name(_name("Outreach test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "cert.pem").write_bytes(cert.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ThrowawayCA(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    session: int = 0
    """Which SMTP session carried it (1, 2, … in the order sessions first sent mail)."""

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Recorder:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[int, int] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds each message's DATA waits before it is accepted: a slow server."""
    begun: int = 0
    """Messages whose DATA has begun, accepted or not yet."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.begun += 1
        await asyncio.sleep(self.delay)
        with self.lock:
            # aiosmtpd makes one protocol object per connection: it names the session.
            number = self.sessions.setdefault(id(server), len(self.sessions) + 1)
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    server.transport.get_extra_info("ssl_object") is not None,
                    number,
                )
            )
        return "250 Message accepted for delivery"


class SMTPServer:
    """aiosmtpd on a loopback port; STARTTLS offered only when given a TLS context."""

    def __init__(
        self,
        port: int,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
        idle_timeout: float = 300,
    ) -> None:
        self.port = port
        self._recorder = _Recorder()
        self.logins: list[str] = []
        auth: dict[str, Any] = {}
        if login is not None:
            auth = {"authenticator": self._authenticator(login), "auth_required": True}
        self._controller = Controller(
            self._recorder,
            hostname="127.0.0.1",
            port=port,
            tls_context=starttls,
            ssl_context=implicit_tls,
            require_starttls=False,
            # aiosmtpd's self-check connects in plaintext, which implicit TLS refuses.
            ready_timeout=5,
            timeout=idle_timeout,
            **auth,
        )
        self.running = False

    def _authenticator(self, login: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == login
            )
            if ok:
                self.logins.append(data.login.decode())
            return AuthResult(success=ok)

        return check

    @property
    def messages(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    @property
    def delay(self) -> float:
        return self._recorder.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._recorder.delay = seconds

    @property
    def begun(self) -> int:
        """Messages the server has begun to take (each one's DATA), accepted or not yet."""
        with self._recorder.lock:
            return self._recorder.begun

    def start(self) -> SMTPServer:
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._controller.stop()
            self.running = False
        # aiosmtpd makes its loop in __init__ and leaves it open; a stopped server is done.
        if not self._controller.loop.is_closed():
            self._controller.loop.close()


class DroppingServer:
    """Accepts TCP connections and closes them at once: a relay that falls over mid-session."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> DroppingServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            # Greet like a real server, then drop: the client is mid-conversation.
            conn.sendall(b"220 flaky.example ESMTP\r\n")
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class HTTPReceiver:
    """A webhook endpoint in a thread; answers each request with the next queued status."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Request] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    status = (
                        receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                    )
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HTTPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

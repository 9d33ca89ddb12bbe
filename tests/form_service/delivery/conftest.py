"""Real servers for the delivery suites, each on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.form_service.delivery.servers import (
    DroppingServer,
    HTTPReceiver,
    SMTPServer,
    ThrowawayCA,
    make_ca,
)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server(test_ca: ThrowawayCA) -> Iterator[Callable[..., SMTPServer]]:
    """Start aiosmtpd: ``smtp_server(starttls=True)``; pass ``start=False`` to start later."""
    started: list[SMTPServer] = []

    def make(
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        port: int | None = None,
        start: bool = True,
        login: tuple[str, str] | None = None,
        idle_timeout: float = 300,
    ) -> SMTPServer:
        server = SMTPServer(
            port or free_port(),
            starttls=test_ca.server_context() if starttls else None,
            implicit_tls=test_ca.server_context() if implicit_tls else None,
            login=login,
            idle_timeout=idle_timeout,
        )
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def dropping_server() -> Iterator[DroppingServer]:
    server = DroppingServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def http_receiver() -> Iterator[HTTPReceiver]:
    receiver = HTTPReceiver(free_port()).start()
    yield receiver
    receiver.stop()


def smtp_delivery(server: SMTPServer, security: str = "starttls", **extra: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "email": {
            "to": ["poc@partner.example.org"],
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "security": security,
            "sender": "reports@harbor-county.example.org",
            **extra,
        },
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder

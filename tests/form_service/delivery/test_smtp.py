from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from form_service.delivery import smtp
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.payload import parse_payload
from form_service.delivery.smtp_sessions import SmtpSessions
from outreach.loader import LoadedProfile
from tests.conftest import free_port
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.factory import partner, payload
from tests.form_service.delivery.servers import DroppingServer, SMTPServer, ThrowawayCA

pytestmark = pytest.mark.smtp


def _send(
    demo: LoadedProfile,
    data_dir: Path,
    delivery: dict[str, Any],
    *,
    ca: ThrowawayCA | None,
    environ: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    poc = partner(demo.profile.partner("intake-team"), **delivery)
    settings = DeliverySettings(
        profile=demo.profile,
        data_dir=data_dir,
        environ=environ or {},
        tls_context=ca.client_context() if ca else None,
        timeout=5,
    )
    asyncio.run(smtp.send(parse_payload(json.dumps(data or payload())), poc, settings))


def test_starttls_delivery_arrives_encrypted(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    data = payload()
    _send(demo, data_dir, smtp_delivery(server), ca=test_ca, data=data)
    (received,) = server.messages
    assert received.tls
    assert received.mail_from == "reports@harbor-county.example.org"
    assert received.rcpt_tos == ["poc@partner.example.org"]
    mail = received.message
    assert mail["Subject"] == "Someone may be in danger now: report R-7K3M9Q2X"
    assert mail["Message-ID"] == f"<{data['delivery_id']}@prevent.harbor-county.example.org>"
    assert "knife to the gym" in mail.get_content()


def test_starttls_required_but_not_offered_sends_nothing(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=False)
    with pytest.raises(DeliveryFailed, match="does not offer STARTTLS") as failure:
        _send(demo, data_dir, smtp_delivery(server), ca=test_ca)
    assert server.messages == []
    assert "knife" not in failure.value.reason


def test_untrusted_certificate_sends_nothing(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    with pytest.raises(DeliveryFailed):
        _send(demo, data_dir, smtp_delivery(server), ca=None)  # system trust: test CA unknown
    assert server.messages == []


def test_implicit_tls(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(implicit_tls=True)
    _send(demo, data_dir, smtp_delivery(server, "tls"), ca=test_ca)
    (received,) = server.messages
    assert received.tls


def test_plain_only_when_the_profile_says_so(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any
) -> None:
    server: SMTPServer = smtp_server(starttls=False)
    _send(demo, data_dir, smtp_delivery(server, "plain"), ca=None)
    (received,) = server.messages
    assert not received.tls


def test_credentials_come_from_the_environment(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True, login=("relay-user", "s3cret"))
    delivery = smtp_delivery(server, username_env="RELAY_USER", password_env="RELAY_PASSWORD")
    environ = {"RELAY_USER": "relay-user", "RELAY_PASSWORD": "s3cret"}
    _send(demo, data_dir, delivery, ca=test_ca, environ=environ)
    assert server.logins == ["relay-user"]
    assert len(server.messages) == 1


def test_missing_secret_is_named(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    delivery = smtp_delivery(server, username_env="RELAY_USER", password_env="RELAY_PASSWORD")
    with pytest.raises(DeliveryFailed, match="RELAY_USER is not set"):
        _send(demo, data_dir, delivery, ca=test_ca, environ={})
    assert server.messages == []


def test_no_credentials_over_plaintext(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any
) -> None:
    server: SMTPServer = smtp_server()
    delivery = smtp_delivery(server, "plain", username_env="U", password_env="P")
    with pytest.raises(DeliveryFailed, match="without TLS"):
        _send(demo, data_dir, delivery, ca=None, environ={"U": "u", "P": "p"})
    assert server.messages == []


def test_server_down_is_a_failure(
    demo: LoadedProfile, data_dir: Path, test_ca: ThrowawayCA
) -> None:
    server = SMTPServer(free_port())  # never started
    try:
        with pytest.raises(DeliveryFailed, match=f"SMTP 127.0.0.1:{server.port}"):
            _send(demo, data_dir, smtp_delivery(server), ca=test_ca)
    finally:
        server.stop()


def test_server_that_drops_the_connection_is_a_failure(
    demo: LoadedProfile, data_dir: Path, dropping_server: DroppingServer, test_ca: ThrowawayCA
) -> None:
    delivery = smtp_delivery(dropping_server)  # type: ignore[arg-type]
    with pytest.raises(DeliveryFailed):
        _send(demo, data_dir, delivery, ca=test_ca)
    assert dropping_server.connections == 1


def test_injected_headers_reach_no_extra_recipient(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    data = payload()
    evil = "hi\r\nBcc: thief@evil.example\r\nTo: thief@evil.example"
    data["fields"]["description"] = evil
    data["fields"]["contact"] = {"name": evil, "email": "x@y.z\r\nCc: thief@evil.example"}
    data["agreement_title"] = evil
    _send(demo, data_dir, smtp_delivery(server), ca=test_ca, data=data)
    (received,) = server.messages
    assert received.rcpt_tos == ["poc@partner.example.org"]
    mail = received.message
    assert mail.get_all("To") == ["poc@partner.example.org"]
    assert mail["Bcc"] is None and mail["Cc"] is None


def _session_settings(
    demo: LoadedProfile, data_dir: Path, test_ca: ThrowawayCA
) -> tuple[DeliverySettings, SmtpSessions]:
    """Delivery settings that keep SMTP sessions open between messages, as the worker does."""
    sessions = SmtpSessions()
    settings = DeliverySettings(
        profile=demo.profile,
        data_dir=data_dir,
        tls_context=test_ca.client_context(),
        smtp_sessions=sessions,
    )
    return settings, sessions


def test_worker_sessions_carry_many_messages(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    poc = partner(demo.profile.partner("intake-team"), **smtp_delivery(server))

    async def scenario() -> None:
        settings, sessions = _session_settings(demo, data_dir, test_ca)
        for _ in range(5):
            await smtp.send(parse_payload(json.dumps(payload())), poc, settings)
        await sessions.close()

    asyncio.run(scenario())
    assert len(server.messages) == 5
    assert {m.session for m in server.messages} == {1}
    assert all(m.tls for m in server.messages)


def test_a_session_the_server_closed_is_replaced(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True, idle_timeout=0.2)
    poc = partner(demo.profile.partner("intake-team"), **smtp_delivery(server))

    async def scenario() -> None:
        settings, sessions = _session_settings(demo, data_dir, test_ca)
        await smtp.send(parse_payload(json.dumps(payload())), poc, settings)
        await asyncio.sleep(1.0)  # the server hangs up on the idle kept session
        await smtp.send(parse_payload(json.dumps(payload())), poc, settings)
        await sessions.close()

    asyncio.run(scenario())
    assert [m.session for m in server.messages] == [1, 2]


def test_closing_the_sessions_closes_their_sockets(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    """A worker that stops closes its sessions and then its event loop: a socket still
    waiting for a TLS goodbye then would never be closed (asyncio warns of a leak)."""
    server: SMTPServer = smtp_server(starttls=True)
    poc = partner(demo.profile.partner("intake-team"), **smtp_delivery(server))
    open_after_close: list[int] = []

    async def scenario() -> None:
        settings, sessions = _session_settings(demo, data_dir, test_ca)
        await smtp.send(parse_payload(json.dumps(payload())), poc, settings)
        sockets = [
            session.get_transport_info("socket")
            for kept in sessions._idle.values()
            for session, _ in kept
        ]
        assert len(sockets) == 1
        await sessions.close()
        open_after_close.extend(s.fileno() for s in sockets if s.fileno() != -1)

    asyncio.run(scenario())
    assert len(server.messages) == 1
    assert open_after_close == []

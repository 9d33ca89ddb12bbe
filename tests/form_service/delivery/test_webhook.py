from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pyrage
import pytest

from form_service.delivery import webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.payload import parse_payload
from outreach.loader import LoadedProfile
from tests.conftest import free_port
from tests.form_service.delivery.factory import partner, payload
from tests.form_service.delivery.servers import HTTPReceiver

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes!!!!!").decode()


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as in guide/delivery.md (Standard Webhooks)."""
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split()
        if sig.startswith("v1,")
    )


def _send(
    demo: LoadedProfile, data_dir: Path, url: str, data: dict[str, Any], **extra: Any
) -> None:
    poc = partner(
        demo.profile.partner("sheriff-tau"),
        channel="webhook",
        webhook={"url": url, "secret_env": "PARTNER_HOOK_SECRET"},
        **extra,
    )
    settings = DeliverySettings(
        profile=demo.profile, data_dir=data_dir, environ={"PARTNER_HOOK_SECRET": SECRET}, timeout=5
    )
    asyncio.run(webhook.send(parse_payload(json.dumps(data)), poc, settings))


def test_signed_payload_arrives(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver
) -> None:
    data = payload("sheriff-tau")
    _send(demo, data_dir, http_receiver.url, data)
    (request,) = http_receiver.requests
    assert request.headers["webhook-id"] == data["delivery_id"]
    assert request.headers["content-type"] == "application/json"
    assert verify(SECRET, request.headers, request.body)
    assert not verify("whsec_" + base64.b64encode(b"wrong").decode(), request.headers, request.body)
    received = json.loads(request.body)
    assert received["fields"] == data["fields"]
    assert received["report_ref"] == "R-7K3M9Q2X" and received["urgent"] is True
    tampered = request.body.replace(b"knife", b"spoon")
    assert not verify(SECRET, request.headers, tampered)


def test_plain_secret_is_used_as_utf8() -> None:
    body = b"{}"
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = webhook.sign(
        webhook.secret_bytes("plain-secret"), "msg_1", int(headers["webhook-timestamp"]), body
    )
    assert verify("plain-secret", headers, body)


def test_same_webhook_id_on_every_retry(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver
) -> None:
    http_receiver.statuses = [500]
    data = payload("sheriff-tau")
    with pytest.raises(DeliveryFailed, match="HTTP 500"):
        _send(demo, data_dir, http_receiver.url, data)
    _send(demo, data_dir, http_receiver.url, data)
    first, second = http_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == data["delivery_id"]


@pytest.mark.parametrize("status", [301, 404, 500, 503])
def test_non_2xx_is_a_failure_without_content(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver, status: int
) -> None:
    http_receiver.statuses = [status]
    with pytest.raises(DeliveryFailed) as failure:
        _send(demo, data_dir, http_receiver.url, payload("sheriff-tau"))
    assert failure.value.reason == f"webhook http://127.0.0.1:{http_receiver.port}: HTTP {status}"


def test_unreachable_endpoint_is_a_failure(demo: LoadedProfile, data_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=partner-secret"
    with pytest.raises(DeliveryFailed, match="ConnectError") as failure:
        _send(demo, data_dir, url, payload("sheriff-tau"))
    assert "partner-secret" not in failure.value.reason


def test_missing_secret_is_named(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver
) -> None:
    poc = partner(
        demo.profile.partner("sheriff-tau"),
        channel="webhook",
        webhook={"url": http_receiver.url, "secret_env": "NOT_SET_ANYWHERE"},
    )
    settings = DeliverySettings(profile=demo.profile, data_dir=data_dir, environ={})
    with pytest.raises(DeliveryFailed, match="NOT_SET_ANYWHERE is not set"):
        asyncio.run(webhook.send(parse_payload(json.dumps(payload("sheriff-tau"))), poc, settings))
    assert http_receiver.requests == []


def test_partner_with_age_key_gets_fields_only_sealed(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver
) -> None:
    identity = pyrage.x25519.Identity.generate()
    data = payload("sheriff-tau")
    _send(demo, data_dir, http_receiver.url, data, age_recipient=str(identity.to_public()))
    (request,) = http_receiver.requests
    assert b"knife" not in request.body and b"Ann Example" not in request.body
    received = json.loads(request.body)
    assert "fields" not in received and received["report_ref"] == "R-7K3M9Q2X"
    assert received["fields_age"].startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    fields = json.loads(pyrage.decrypt(received["fields_age"].encode(), [identity]))
    assert fields == data["fields"]
    assert verify(SECRET, request.headers, request.body)

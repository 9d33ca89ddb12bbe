from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
import pytest

from form_service.delivery import webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.payload import parse_payload
from outreach.loader import LoadedProfile
from tests.conftest import REPO, free_port
from tests.form_service.delivery.factory import partner, payload
from tests.form_service.delivery.servers import HTTPReceiver

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes!!!!!").decode()


def _guide_verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """The receiver-side check exactly as guide/delivery.md prints it."""
    guide = (REPO / "guide" / "delivery.md").read_text(encoding="utf-8")
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", guide, re.S)
        if "def verify_webhook" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(code, "guide/delivery.md", "exec"), namespace)
    return namespace["verify_webhook"]  # type: ignore[no-any-return]


verify = _guide_verifier()


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
    assert int(request.headers["webhook-timestamp"]) % 60 == 0, "timed to the minute"
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

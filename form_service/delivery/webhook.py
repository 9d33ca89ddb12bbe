"""Delivery to a partner's HTTPS endpoint, signed the Standard Webhooks way.

The receiver checks ``webhook-signature`` (HMAC-SHA256 over id, timestamp and body with a
shared secret) and drops repeats by ``webhook-id``, which is the delivery id and so the
same on every retry. guide/delivery.md has the receiver's side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence

import httpx

from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.files import DeliveredFile, files_for
from form_service.delivery.message import RenderedMessage
from form_service.delivery.payload import DeliveryPayload
from form_service.delivery.sealing import seal
from outreach.profile import DeliveryConfig, Partner

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret


def secret_bytes(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret decoded, as Standard Webhooks libraries do; else UTF-8."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except ValueError:
            raise DeliveryFailed("webhook secret is not valid whsec_ base64") from None
    return secret.encode("utf-8")


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_body(
    payload: DeliveryPayload, partner: Partner, files: Sequence[DeliveredFile] = ()
) -> bytes:
    """The payload as JSON; for a partner with an age key, the fields only sealed.

    The report's files travel inside the signed body, base64 (``data_base64``; for a
    partner with an age key, ``data_age_base64``, the file age-encrypted), rather than as
    links to fetch later: the signature then covers them, the delivery id makes a retry a
    duplicate the receiver drops, the service needs no public route serving files, and
    their delivery copies are deleted as soon as the receiver answered 2xx."""
    recipient = partner.delivery.age_recipient
    if recipient is None and not files:
        return payload.to_json().encode("utf-8")
    data = payload.to_dict()
    for listed, file in zip(data.get("attachments", []), files, strict=True):
        key = "data_base64" if recipient is None else "data_age_base64"
        listed[key] = base64.b64encode(file.data).decode("ascii")
    if recipient is not None:
        fields = json.dumps(data.pop("fields"), ensure_ascii=False).encode("utf-8")
        data["fields_age"] = seal(fields, recipient).decode("ascii")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def send(payload: DeliveryPayload, partner: Partner, settings: DeliverySettings) -> None:
    files = await files_for(payload, partner, settings)
    body = webhook_body(payload, partner, files)
    await post_signed(partner.delivery, payload.delivery_id, body, settings)


async def send_notice(
    rendered: RenderedMessage, delivery: DeliveryConfig, settings: DeliverySettings
) -> None:
    """A message that holds no report (a staff notice) as JSON: its subject and text."""
    data = {"delivery_id": rendered.delivery_id, "subject": rendered.subject, "text": rendered.body}
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await post_signed(delivery, rendered.delivery_id, body, settings)


async def post_signed(
    delivery: DeliveryConfig, msg_id: str, body: bytes, settings: DeliverySettings
) -> None:
    config = delivery.webhook
    if config is None:
        raise DeliveryFailed("no webhook settings")
    secret = secret_bytes(settings.secret(config.secret_env) or "")
    # The minute it was signed, like a mail's Date: a request timed to the second would time
    # the report it carries. Receivers accept five minutes' difference.
    timestamp = int(time.time()) // 60 * 60
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    try:
        async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False) as client:
            response = await client.post(str(config.url), content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"webhook {_origin(config.url)}: {type(error).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"webhook {_origin(config.url)}: HTTP {response.status_code}")


def _origin(url: object) -> str:
    # Scheme and host only: a path or query may hold a token the partner put there.
    parsed = httpx.URL(str(url))
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"

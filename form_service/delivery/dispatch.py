"""One delivery attempt: parse the outbox payload, pick the partner's channel, send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from form_service.delivery import maildir, smtp, webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.message import RenderedMessage, render_digest
from form_service.delivery.payload import DeliveryPayload, PayloadError, parse_payload
from outreach.profile import Delivery, Partner

Send = Callable[[DeliveryPayload, Partner, DeliverySettings], Awaitable[None]]
SendRendered = Callable[[RenderedMessage, Delivery, DeliverySettings], Awaitable[None]]
CHANNELS: dict[str, Send] = {"email": smtp.send, "webhook": webhook.send, "maildir": maildir.send}
# Channels people read: they take a flood digest. A webhook receiver is a program that
# files each signed delivery by its own id, so it keeps getting them one by one.
DIGEST_CHANNELS: dict[str, SendRendered] = {
    "email": smtp.send_rendered,
    "maildir": maildir.send_rendered,
}


def partner_of(payload: DeliveryPayload, settings: DeliverySettings) -> Partner:
    try:
        return settings.profile.partner(payload.partner_id)
    except KeyError:
        raise DeliveryFailed(f"partner {payload.partner_id} is not in the profile") from None


async def deliver(payload_text: str, settings: DeliverySettings) -> DeliveryPayload:
    """Send one payload to its partner; DeliveryFailed when it did not get there."""
    try:
        payload = parse_payload(payload_text)
    except PayloadError as error:
        raise DeliveryFailed(str(error)) from None
    partner = partner_of(payload, settings)
    await within_timeout(
        partner.delivery, settings, CHANNELS[partner.delivery.channel](payload, partner, settings)
    )
    return payload


async def deliver_digest(payloads: Sequence[DeliveryPayload], settings: DeliverySettings) -> None:
    """Send one partner's flood-flagged payloads as one message; DeliveryFailed if not sent."""
    partner = partner_of(payloads[0], settings)
    if any(p.partner_id != partner.id for p in payloads):
        raise DeliveryFailed("a digest may only hold one partner's deliveries")
    send = DIGEST_CHANNELS.get(partner.delivery.channel)
    if send is None:
        raise DeliveryFailed(f"{partner.delivery.channel}: no digests on this channel")
    rendered = render_digest(payloads, partner, settings.profile)
    await within_timeout(partner.delivery, settings, send(rendered, partner.delivery, settings))


async def within_timeout(
    delivery: Delivery, settings: DeliverySettings, sending: Awaitable[None]
) -> None:
    try:
        # A channel's own timeouts cover the network; this one covers everything else.
        async with asyncio.timeout(settings.timeout * 2):
            await sending
    except TimeoutError:
        raise DeliveryFailed(f"{delivery.channel}: attempt timed out") from None

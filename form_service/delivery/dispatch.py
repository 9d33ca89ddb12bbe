"""One delivery attempt: parse the outbox payload, pick the partner's channel, send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from form_service.delivery import maildir, smtp, webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.payload import DeliveryPayload, PayloadError, parse_payload
from outreach.profile import Partner

Send = Callable[[DeliveryPayload, Partner, DeliverySettings], Awaitable[None]]
CHANNELS: dict[str, Send] = {"email": smtp.send, "webhook": webhook.send, "maildir": maildir.send}


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
    try:
        # A channel's own timeouts cover the network; this one covers everything else.
        async with asyncio.timeout(settings.timeout * 2):
            await CHANNELS[partner.delivery.channel](payload, partner, settings)
    except TimeoutError:
        raise DeliveryFailed(f"{partner.delivery.channel}: attempt timed out") from None
    return payload

"""One delivery attempt: a claimed row's payload, parsed once, sent on its partner's channel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from form_service.delivery import maildir, smtp, webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.message import RenderedMessage, render_digest
from form_service.delivery.payload import DeliveryPayload, PayloadError, parse_payload
from form_service.storage import ClaimedDelivery
from outreach.profile import DeliveryConfig, Partner

Send = Callable[[DeliveryPayload, Partner, DeliverySettings], Awaitable[None]]
SendRendered = Callable[[RenderedMessage, DeliveryConfig, DeliverySettings], Awaitable[None]]
CHANNELS: dict[str, Send] = {"email": smtp.send, "webhook": webhook.send, "maildir": maildir.send}
# Channels people read: they take a flood digest. A webhook receiver is a program that
# files each signed delivery by its own id, so it keeps getting them one by one.
DIGEST_CHANNELS: dict[str, SendRendered] = {
    "email": smtp.send_rendered,
    "maildir": maildir.send_rendered,
}


@dataclass(frozen=True)
class OutgoingDelivery:
    """A claimed outbox row with its payload, parsed once, right after the claim."""

    row: ClaimedDelivery
    payload: DeliveryPayload


def outgoing(row: ClaimedDelivery) -> OutgoingDelivery:
    """*row* with its payload parsed; DeliveryFailed when it has none, the payload breaks the
    contract, or it names another partner than its row."""
    if row.payload is None:
        raise DeliveryFailed("the outbox row has no payload")
    try:
        payload = parse_payload(row.payload)
    except PayloadError as error:
        raise DeliveryFailed(str(error)) from None
    if payload.partner_id != row.partner_id:
        raise DeliveryFailed("payload names another partner than its outbox row")
    return OutgoingDelivery(row, payload)


def partner_of(payload: DeliveryPayload, settings: DeliverySettings) -> Partner:
    try:
        return settings.profile.partner(payload.partner_id)
    except KeyError:
        raise DeliveryFailed(f"partner {payload.partner_id} is not in the profile") from None


async def deliver(payload: DeliveryPayload, settings: DeliverySettings) -> None:
    """Send one payload to its partner; DeliveryFailed when it did not get there."""
    partner = partner_of(payload, settings)
    send = CHANNELS[partner.delivery.channel]
    source = settings.file_source
    if payload.attachments and source is not None:
        payload = await source.deliverable(payload)  # FileNotReady while a photo is cleaned
    if not payload.attachments or source is None:
        await within_timeout(partner.delivery, settings, send(payload, partner, settings))
        return
    # A delivery with files holds them, and the message made of them, whole in memory (a
    # 50 MB video is some 200 MB as a MIME message on its way out): one such at a time
    # per worker, while deliveries without files go on beside it.
    async with source.turn:
        await within_timeout(partner.delivery, settings, send(payload, partner, settings))


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
    delivery: DeliveryConfig, settings: DeliverySettings, sending: Awaitable[None]
) -> None:
    try:
        # A channel's own timeouts cover the network; this one covers everything else.
        async with asyncio.timeout(settings.timeout * 2):
            await sending
    except TimeoutError:
        raise DeliveryFailed(f"{delivery.channel}: attempt timed out") from None

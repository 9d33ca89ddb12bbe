"""Telling someone when a danger-now report waits unacknowledged, again until someone acts.

A danger-now report nobody has acknowledged within the profile's ``escalation.after_minutes``
gets a notice sent to the first contact of ``escalation.contacts``; every
``repeat_minutes`` after, the next contact gets one (after the last, the first again),
until someone acknowledges or closes the report in the inbox.

A notice is the same fixed text for every report, with a link to the inbox: no reference,
no count, no time finer than the minute. It often goes where the team's inbox protections
do not reach (a phone-to-e-mail gateway, a pager), and the inbox already lists the waiting
reports first, so the reference would tell its reader nothing they need; which reports
were escalated to whom is in the staff audit trail. Reports due for the same contact in
one pass make one notice.

Notices go through the partners' channels, each contact being a delivery target of the
same shape. Each step is claimed in the database before it is sent, so of several worker
processes only one sends it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urljoin

from form_service.delivery import maildir, smtp, webhook
from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.dispatch import SendRendered, within_timeout
from form_service.delivery.message import RenderedMessage, mail_gettext, mail_templates, one_line
from form_service.logs import log_event
from form_service.storage import Store
from form_service.storage import escalation as records
from form_service.storage.staff import append_event
from outreach.addresses import service_address
from outreach.profile import DeliveryConfig, Escalation, Profile

NOTICE_CHANNELS: dict[str, SendRendered] = {
    "email": smtp.send_rendered,
    "maildir": maildir.send_rendered,
    "webhook": webhook.send_notice,
}
ACTOR = "service"
_RETRY_AFTER = timedelta(minutes=1)
"""A notice that failed: the next contact's turn comes this soon rather than a whole repeat."""


@dataclass(frozen=True)
class _Step:
    report_ref: str
    step: int
    """The notice's number, 1 for the first about the report."""
    contact: int
    """Its contact's index in escalation.contacts."""


def inbox_url(profile: Profile) -> str:
    # The staff pages sit at the root of the service's host, whatever its public path.
    return urljoin(service_address(profile.agency), "/staff/")


def render_notice(contact: DeliveryConfig, profile: Profile) -> RenderedMessage:
    """The fixed text, in the contact's language; a new id for each notice."""
    lang = contact.language or profile.default_language
    context = {"_": mail_gettext(lang, profile.interface_locale), "inbox_url": inbox_url(profile)}
    env = mail_templates()
    subject = one_line(env.get_template("escalation_subject.txt").render(context))
    body = env.get_template("escalation.txt").render(context)
    return RenderedMessage(str(uuid.uuid4()), "", True, subject, body)


async def escalate(store: Store, settings: DeliverySettings, now: datetime) -> int:
    """One pass: claim every step due at *now*, send one notice per contact, record each
    step in the audit trail. The number of notices sent."""
    escalation = settings.profile.escalation
    if escalation is None:
        return 0
    steps = await _claim(store, escalation, now)
    if not steps:
        return 0
    contacts = sorted({s.contact for s in steps})
    outcomes = await asyncio.gather(
        *(_send(escalation.contacts[index], settings) for index in contacts)
    )
    failed = {i: reason for i, reason in zip(contacts, outcomes, strict=True) if reason}
    await _record(store, steps, failed, now)
    for index in contacts:
        if index in failed:
            log_event("escalation_failed", logging.ERROR, contact=index, error=failed[index])
        else:
            log_event("escalation_sent", logging.WARNING, contact=index)
    return len(contacts) - len(failed)


async def _record(store: Store, steps: list[_Step], failed: dict[int, str], now: datetime) -> None:
    """Each step in the audit trail; a failed one hands the turn on to the next contact soon."""
    async with store.transaction() as tx:
        for step in steps:
            action = "escalation_failed" if step.contact in failed else "escalated"
            detail = f"contacts[{step.contact}]"
            await append_event(tx, ACTOR, action, now, step.report_ref, detail)
            if step.contact in failed:
                await records.bring_forward(tx, step.report_ref, step.step, now + _RETRY_AFTER)


async def _claim(store: Store, escalation: Escalation, now: datetime) -> list[_Step]:
    count = len(escalation.contacts)
    next_due = now + timedelta(minutes=escalation.repeat_minutes)
    claimed = []
    async with store.transaction() as tx:
        for due in await records.due_steps(tx, now, escalation.after_minutes):
            if await records.claim_step(tx, due, next_due):
                claimed.append(_Step(due.report_ref, due.step + 1, due.step % count))
    return claimed


async def _send(contact: DeliveryConfig, settings: DeliverySettings) -> str | None:
    """Send one notice; the reason it failed, or None."""
    rendered = render_notice(contact, settings.profile)
    send = NOTICE_CHANNELS[contact.channel]
    try:
        await within_timeout(contact, settings, send(rendered, contact, settings))
    except DeliveryFailed as failure:
        return failure.reason
    except Exception as error:  # a bug must not keep the next contact from being told
        return f"internal error: {type(error).__name__}"
    return None


async def escalate_forever(
    store: Store,
    settings: DeliverySettings,
    clock: Callable[[], datetime],
    every_seconds: float = 30.0,
) -> None:
    """Run a pass every *every_seconds* until cancelled (nothing to do without contacts)."""
    if settings.profile.escalation is None:
        return
    # One SMTP session per notice: notices are rare, and the worker's sessions are its own.
    settings = replace(settings, smtp_sessions=None)
    while True:
        try:
            await escalate(store, settings, clock())
        except Exception as error:  # a database hiccup must not end escalation for good
            log_event("escalation_error", logging.ERROR, error=type(error).__name__)
        await asyncio.sleep(every_seconds)

"""Telling staff users that something new waits for them in the inbox, and nothing more.

Features that give a user work queue a notice in their own transaction (``notify_users``,
``notify_role``); new reports need no call: the notice pass itself finds reports newer than
the newest each intake user was told about, so storing a report does no extra work. The
pass, run beside escalation, sends each user at most one notice per the profile's
``staff_notices.every_minutes``: whatever came in meanwhile waits for that one notice.
Urgent news (a danger-now report, or a caller's ``urgent=True``) goes at the next pass.

A notice is the same fixed text whatever caused it, with the inbox's address: no report
reference, no count, no time finer than the minute. It goes to the address of the user's
account, which a phone may show on its lock screen; the inbox is where the work is.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from pydantic import ValidationError

from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.dispatch import within_timeout
from form_service.delivery.message import RenderedMessage, mail_gettext, mail_templates, one_line
from form_service.logs import log_event
from form_service.staff.escalation import ACTOR, NOTICE_CHANNELS, inbox_url
from form_service.storage import Store, Tx
from form_service.storage import notices as records
from form_service.storage.staff import append_event
from outreach.profile import DeliveryConfig, EmailDelivery, Profile, StaffNotices

LEASE = timedelta(seconds=10)
"""How long a pass's claim on a notice holds unless renewed. The pass renews its claims
every RENEW_SECONDS while it sends, however long that takes; a pass that died (its process
killed) stops renewing, and the next pass after the lease sends the notice."""
RENEW_SECONDS = 3.0


async def notify_users(
    tx: Tx, user_ids: Iterable[str], now: datetime, urgent: bool = False
) -> None:
    """Queue a notice for each of these users (active ones only), in the caller's
    transaction; sent by the next pass it is due at."""
    await records.add_news(tx, user_ids, now, urgent)


async def notify_role(tx: Tx, role: str, now: datetime, urgent: bool = False) -> None:
    """Queue a notice for every active user with *role* (``intake``, ``partner:<id>``, …)."""
    await records.add_news_for_role(tx, role, now, urgent)


def render_staff_notice(notices: StaffNotices, profile: Profile, address: str) -> RenderedMessage:
    """The fixed text, in the notices' language; a new id for each notice."""
    lang = notices.language or profile.default_language
    context = {"_": mail_gettext(lang, profile.interface_locale), "inbox_url": inbox_url(profile)}
    env = mail_templates()
    subject = one_line(env.get_template("staff_notice_subject.txt").render(context))
    body = env.get_template("staff_notice.txt").render(context)
    return RenderedMessage(str(uuid.uuid4()), "", False, subject, body, to=(address,))


def notice_delivery(notices: StaffNotices, address: str) -> DeliveryConfig:
    """The delivery target of one user's notice: the profile's channel, To their address."""
    email = None
    if notices.email is not None:
        try:
            email = EmailDelivery(to=[address], **notices.email.model_dump())
        except ValidationError:
            raise DeliveryFailed("the account's address is not usable for e-mail") from None
    return DeliveryConfig(
        channel=notices.channel, language=notices.language, email=email, maildir=notices.maildir
    )


async def send_notices(store: Store, settings: DeliverySettings, now: datetime) -> int:
    """One pass: find new reports for the intake team and urgent requests past their due
    time, claim every notice due at *now*,
    send one message per user, record each. The number of notices sent."""
    notices = settings.profile.staff_notices
    if notices is None:
        return 0
    async with store.transaction() as tx:
        await records.drop_inactive(tx)
        await records.note_new_reports(tx, now)
        await records.note_overdue_requests(tx, now)
        due = await records.claim_due(tx, now, notices.every_minutes, LEASE)
    if not due:
        return 0
    sending = asyncio.gather(*(_send(notices, n.email, settings) for n in due))
    outcomes = await _holding(store, due, now, sending)
    async with store.transaction() as tx:
        for notice, failure in zip(due, outcomes, strict=True):
            if failure:
                await records.release(tx, notice)
            else:
                await records.mark_sent(tx, notice, now)
                await append_event(tx, ACTOR, "notice_sent", now, detail=f"user {notice.user_id}")
    failed = sum(1 for failure in outcomes if failure)
    if failed:
        log_event("staff_notices_failed", logging.ERROR, notices=failed)
    return len(due) - failed


async def _holding(
    store: Store, due: list[records.DueNotice], now: datetime, sending: Awaitable[list[bool]]
) -> list[bool]:
    """Await *sending*, renewing the pass's claims every RENEW_SECONDS meanwhile. Times
    count on from the pass's *now*, the clock the claims were written with."""
    task = asyncio.ensure_future(sending)
    started = time.monotonic()
    held = due
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=RENEW_SECONDS)
            if done:
                return task.result()
            until = now + timedelta(seconds=time.monotonic() - started) + LEASE
            try:
                async with store.transaction() as tx:
                    held = await records.renew(tx, held, until)
            except Exception as error:  # the database is away: the next renewal may get through
                log_event("notice_lease_not_renewed", logging.WARNING, error=type(error).__name__)
    finally:
        if not task.done():  # the pass was stopped: so are its sends
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _send(notices: StaffNotices, address: str, settings: DeliverySettings) -> bool:
    """Send one user's notice; True when it failed (the reason may name their address, so
    it is kept nowhere)."""
    try:
        delivery = notice_delivery(notices, address)
        rendered = render_staff_notice(notices, settings.profile, address)
        send = NOTICE_CHANNELS[delivery.channel](rendered, delivery, settings)
        await within_timeout(delivery, settings, send)
    except Exception:  # a bug or a bad address must not keep the other users from being told
        return True
    return False


async def send_notices_forever(
    store: Store,
    settings: DeliverySettings,
    clock: Callable[[], datetime],
    every_seconds: float = 30.0,
) -> None:
    """Run a pass every *every_seconds* until cancelled (nothing to do without the setting)."""
    if settings.profile.staff_notices is None:
        return
    # One SMTP session per notice, as for escalation: the worker's sessions are its own.
    settings = replace(settings, smtp_sessions=None)
    while True:
        try:
            await send_notices(store, settings, clock())
        except Exception as error:  # a database hiccup must not end notices for good
            log_event("staff_notice_error", logging.ERROR, error=type(error).__name__)
        await asyncio.sleep(every_seconds)

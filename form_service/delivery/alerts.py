"""Telling the intake team that a delivery was given up, by a channel that cannot be down.

The failed channel may be the intake team's own (the same relay, the same endpoint), so
the alert goes to a local Maildir folder, ``<data dir>/maildir/_alerts/`` (a name no
partner folder can take), and to the service log as an ERROR line. It names the report,
partner, rule, agreement and last error, never the report's content.
"""

from __future__ import annotations

import asyncio
import logging

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.maildir import store
from form_service.delivery.message import (
    RenderedMessage,
    agency_sender,
    email_bytes,
    mail_gettext,
    mail_templates,
    message_domain,
    one_line,
    to_email,
)
from form_service.storage import ClaimedDelivery
from outreach.profile import Profile, localize

ALERT_FOLDER = "_alerts"
log = logging.getLogger("outreach.delivery")


def _language(profile: Profile) -> str:
    intake = profile.routing.intake
    if intake is None:
        return profile.default_language
    return profile.partner(intake).delivery.language or profile.default_language


def render_alert(
    delivery: ClaimedDelivery, urgent: bool, reason: str, profile: Profile
) -> RenderedMessage:
    lang = _language(profile)
    try:
        partner_name = localize(profile.partner(delivery.partner_id).name, lang, lang)
    except KeyError:
        partner_name = delivery.partner_id
    context = {
        "_": mail_gettext(lang, profile.interface_locale),
        "urgent": urgent,
        "report_ref": delivery.report_ref,
        "partner_id": delivery.partner_id,
        "partner_name": partner_name,
        "rule_id": delivery.rule_id,
        "agreement_id": delivery.agreement_id,
        "attempts": delivery.attempts,
        "last_error": one_line(reason, 500),
    }
    env = mail_templates()
    subject = one_line(env.get_template("alert_subject.txt").render(context))
    body = env.get_template("alert.txt").render(context)
    return RenderedMessage(
        f"dead-{delivery.delivery_id}", delivery.report_ref, urgent, subject, body
    )


async def alert_dead(
    delivery: ClaimedDelivery, urgent: bool, reason: str, settings: DeliverySettings
) -> None:
    log.error(
        "delivery given up: report %s to partner %s (rule %s, agreement %s) after %d attempts: %s",
        delivery.report_ref,
        delivery.partner_id,
        delivery.rule_id,
        delivery.agreement_id,
        delivery.attempts,
        reason,
    )
    profile = settings.profile
    rendered = render_alert(delivery, urgent, reason, profile)
    mail = to_email(rendered, sender=agency_sender(profile), to=[], domain=message_domain(profile))
    folder = settings.maildir_root / ALERT_FOLDER
    try:
        await asyncio.to_thread(store, folder, rendered.delivery_id, email_bytes(mail))
    except OSError as error:
        log.critical("could not write the alert to %s: %s", folder, error.strerror)

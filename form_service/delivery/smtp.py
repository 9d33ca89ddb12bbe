"""Delivery by e-mail over SMTP, encrypted in transit unless the profile says otherwise.

aiosmtplib's default upgrades to TLS only when the server offers STARTTLS and silently
sends plaintext when it does not. Here 'starttls' (the default) demands the upgrade, so a
server without it (or a man in the middle stripping it) gets nothing at all.
"""

from __future__ import annotations

import aiosmtplib

from form_service.delivery.channel import DeliveryFailed, DeliverySettings
from form_service.delivery.files import files_for
from form_service.delivery.message import (
    RenderedMessage,
    email_bytes,
    message_domain,
    one_line,
    render_message,
    sender_address,
    to_email,
)
from form_service.delivery.payload import DeliveryPayload
from form_service.delivery.smtp_sessions import SmtpSessions
from outreach.profile import DeliveryConfig, EmailDelivery, Partner

# (use_tls, start_tls) for each security setting; start_tls=True fails without STARTTLS.
_MODES = {"starttls": (False, True), "tls": (True, False), "plain": (False, False)}


async def send(payload: DeliveryPayload, partner: Partner, settings: DeliverySettings) -> None:
    files = await files_for(payload, partner, settings)
    rendered = render_message(payload, partner, settings.profile, files)
    await send_rendered(rendered, partner.delivery, settings)


async def send_rendered(
    rendered: RenderedMessage, delivery: DeliveryConfig, settings: DeliverySettings
) -> None:
    config = delivery.email
    if config is None:
        raise DeliveryFailed("no e-mail settings")
    username = settings.secret(config.username_env)
    password = settings.secret(config.password_env)
    if config.security == "plain" and (username or password):
        raise DeliveryFailed("refusing to send SMTP credentials without TLS (security: plain)")
    profile = settings.profile
    sender = sender_address(profile.agency.short_name, config.sender)
    mail = to_email(rendered, sender=sender, to=config.to, domain=message_domain(profile))
    use_tls, start_tls = _MODES[config.security]

    def open_session() -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=username,
            password=password,
            use_tls=use_tls,
            start_tls=start_tls,
            validate_certs=True,
            tls_context=settings.tls_context,
            timeout=settings.timeout,
        )

    sessions = settings.smtp_sessions or SmtpSessions()
    key = (config.smtp_host, config.smtp_port, config.security, username or "")
    try:
        # Bytes, not the message object: aiosmtplib would refold its headers.
        data = email_bytes(mail, rendered.files)
        await sessions.send(key, open_session, config.sender, config.to, data)
    except aiosmtplib.SMTPException as error:
        raise DeliveryFailed(_reason(error, config)) from None
    except OSError as error:
        raise DeliveryFailed(f"{_server(config)}: {type(error).__name__}") from None
    finally:
        if settings.smtp_sessions is None:
            await sessions.close()


def _server(config: EmailDelivery) -> str:
    return f"SMTP {config.smtp_host}:{config.smtp_port}"


def _reason(error: aiosmtplib.SMTPException, config: EmailDelivery) -> str:
    # A server's reply text can quote what it refused, so only its code goes on record.
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return f"{_server(config)}: {type(error).__name__} {error.code}"
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({str(refused.code) for refused in error.recipients})
        return f"{_server(config)}: every recipient refused ({', '.join(codes)})"
    if "STARTTLS" in str(error):
        return f"{_server(config)}: server does not offer STARTTLS (required; nothing was sent)"
    return f"{_server(config)}: {type(error).__name__}: {one_line(str(error), 120)}"

"""The secrets a profile names (by environment variable) and which of them are missing.

A missing secret otherwise shows only when the first report for that partner fails to go
out, so ``check --deploy`` and ``serve`` look for every one before they start. Only the
variables' names are ever shown, never their values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from outreach.profile import DeliveryConfig, Profile, SmtpServer, StaffNotices, localize


@dataclass(frozen=True)
class SecretNeed:
    """One environment variable a delivery target needs."""

    who: str
    """Who needs it: a partner by id and name, an escalation contact, the staff notices."""
    key: str
    """The profile key that names the variable."""
    variable: str


def _smtp_needs(who: str, where: str, smtp: SmtpServer) -> Iterator[SecretNeed]:
    for name in ("username_env", "password_env"):
        variable = getattr(smtp, name)
        if variable is not None:
            yield SecretNeed(who, f"{where}.{name}", variable)


def _delivery_needs(who: str, where: str, delivery: DeliveryConfig) -> Iterator[SecretNeed]:
    if delivery.email is not None:
        yield from _smtp_needs(who, f"{where}.email", delivery.email)
    if delivery.webhook is not None:
        yield SecretNeed(who, f"{where}.webhook.secret_env", delivery.webhook.secret_env)


def _notice_needs(notices: StaffNotices) -> Iterator[SecretNeed]:
    if notices.email is not None:
        yield from _smtp_needs("the staff notices", "staff_notices.email", notices.email)


def secret_needs(profile: Profile) -> list[SecretNeed]:
    """Every environment variable the profile's delivery targets read their secrets from."""
    default = profile.default_language
    needs: list[SecretNeed] = []
    for index, partner in enumerate(profile.partners):
        who = f"partner {partner.id} ({localize(partner.name, default, default)})"
        needs += _delivery_needs(who, f"partners[{index}].delivery", partner.delivery)
    if profile.escalation is not None:
        for index, contact in enumerate(profile.escalation.contacts, start=1):
            where = f"escalation.contacts[{index - 1}]"
            needs += _delivery_needs(f"escalation contact {index}", where, contact)
    if profile.staff_notices is not None:
        needs += _notice_needs(profile.staff_notices)
    return needs


def missing_secrets(profile: Profile, environ: Mapping[str, str]) -> list[str]:
    """One line per variable that is unset or empty, naming who needs it (never a value)."""
    return [
        f"{need.key}: {need.who} needs the environment variable {need.variable}, which is not set"
        for need in secret_needs(profile)
        if not environ.get(need.variable)
    ]

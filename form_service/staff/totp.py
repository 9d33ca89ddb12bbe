"""The second factor: time-based one-time codes (RFC 6238, pyotp) and recovery codes.

A code is accepted once: the user's last accepted time step is stored, and a code for that
step or an earlier one is refused, so a code seen over a shoulder cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp
import segno

STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 12  # about 59 bits each

clock = time.time
"""Where the current time comes from (tests move it on to make the next code)."""


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str, title: str) -> str:
    """The enrolment QR code as inline SVG markup (no image request, no script)."""
    svg: str = segno.make(uri, error="m").svg_inline(
        scale=4, title=title, dark="#000", light="#fff", border=4
    )
    return svg


def accept_code(secret: str, typed: str, last_step: int, now: float | None = None) -> int | None:
    """The time step of a valid code newer than *last_step*, or None.

    One step either side of now is allowed for a phone whose clock drifts a little."""
    code = "".join(typed.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    moment = clock() if now is None else now
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(moment // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    return [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_hash(code: str) -> str:
    """Recovery codes are random and long, so a plain hash is enough to store them."""
    cleaned = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(b"staff-recovery:" + cleaned.encode()).hexdigest()


def display_recovery(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))

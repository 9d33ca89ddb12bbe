"""One-time codes (RFC 6238) and recovery codes."""

from __future__ import annotations

import pyotp

from form_service.staff import totp

NOW = 1_800_000_000.0


def code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret, interval=30).at(at)


def test_a_code_is_accepted_once_per_step() -> None:
    secret = totp.new_secret()
    step = totp.accept_code(secret, code(secret, NOW), 0, now=NOW)
    assert step == int(NOW // 30)
    assert totp.accept_code(secret, code(secret, NOW), step, now=NOW) is None  # reused


def test_a_phone_a_step_off_is_forgiven_but_not_more() -> None:
    secret = totp.new_secret()
    assert totp.accept_code(secret, code(secret, NOW - 30), 0, now=NOW) is not None
    assert totp.accept_code(secret, code(secret, NOW + 30), 0, now=NOW) is not None
    assert totp.accept_code(secret, code(secret, NOW - 90), 0, now=NOW) is None


def test_junk_is_refused() -> None:
    secret = totp.new_secret()
    for typed in ("", "12345", "abcdef", "1234567", "<b>1</b>"):
        assert totp.accept_code(secret, typed, 0, now=NOW) is None


def test_the_qr_code_is_inline_svg_with_a_title() -> None:
    svg = totp.qr_svg(totp.provisioning_uri(totp.new_secret(), "a@example.org", "x"), "QR")
    assert svg.startswith("<svg") and "<title>QR</title>" in svg
    assert "<script" not in svg and "href" not in svg


def test_recovery_codes_are_ten_distinct_and_forgiving_to_type() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    shown = totp.display_recovery(codes[0])
    assert totp.recovery_hash(shown.upper()) == totp.recovery_hash(codes[0])

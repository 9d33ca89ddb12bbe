"""Receipt codes: 100 bits, Crockford base32 in groups, stored only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from form_service.receipts import (
    CROCKFORD,
    new_report_ref,
    normalize_code,
    receipt_code,
    receipt_hash,
)

TOKEN_ID = "0123456789abcdef0123456789abcdef"


def test_code_shape() -> None:
    code = receipt_code("secret", TOKEN_ID)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", code), code
    # 20 base32 characters carry 100 bits.
    assert len(code.replace("-", "")) * 5 == 100


def test_code_is_stable_for_one_form_and_differs_otherwise() -> None:
    assert receipt_code("secret", TOKEN_ID) == receipt_code("secret", TOKEN_ID)
    assert receipt_code("secret", TOKEN_ID) != receipt_code("secret", "f" * 32)
    assert receipt_code("secret", TOKEN_ID) != receipt_code("other", TOKEN_ID)


def test_codes_use_the_whole_alphabet() -> None:
    seen = set()
    for n in range(200):
        seen |= set(receipt_code("secret", f"{n:032x}").replace("-", ""))
    assert seen == set(CROCKFORD)


@pytest.mark.parametrize(
    "typed",
    [
        "{code}",
        "{lower}",
        " {spaced} ",
        "{nodash}",
        "{confused}",
    ],
)
def test_typing_variations_find_the_same_hash(typed: str) -> None:
    code = "7K3M-9Q2X-1B0D-2B6C-Z5TA"
    variants = {
        "code": code,
        "lower": code.lower(),
        "spaced": code.replace("-", " "),
        "nodash": code.replace("-", ""),
        "confused": code.replace("1", "l").replace("0", "O"),
    }
    entered = typed.format(**variants)
    assert normalize_code(entered) == "7K3M9Q2X1B0D2B6CZ5TA"
    assert receipt_hash("secret", entered) == receipt_hash("secret", code)


def test_hash_is_keyed_and_hides_the_code() -> None:
    code = receipt_code("secret", TOKEN_ID)
    hashed = receipt_hash("secret", code)
    assert hashed != receipt_hash("other", code)
    assert code.replace("-", "") not in hashed.upper()
    assert len(hashed) == 64


def test_report_reference() -> None:
    ref = new_report_ref()
    assert re.fullmatch(r"R-[0-9A-HJKMNP-TV-Z]{8}", ref)
    assert len({new_report_ref() for _ in range(100)}) == 100


def test_code_is_the_first_100_bits_of_the_mac_in_crockford_base32() -> None:
    mac = hmac.new(b"s3cret", b"receipt:token-1", hashlib.sha256).digest()
    number = int.from_bytes(mac, "big") >> (256 - 100)
    digits = "".join(CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(20)))
    code = receipt_code("s3cret", "token-1")
    assert code.replace("-", "") == digits
    # Codes already handed out stay the same from one release to the next.
    assert code == "XMXY-SMDJ-6MB3-EZZA-0BFG"


def test_report_reference_is_its_five_bytes_in_crockford_base32() -> None:
    assert new_report_ref(bytes.fromhex("00ff10a5c3")) == "R-03ZH19E3"
    assert new_report_ref(b"\xff" * 5) == "R-ZZZZZZZZ"
    assert new_report_ref(b"\0" * 5 + b"rest") == "R-00000000"

"""Receipt codes: 100 random bits, Crockford base32 in groups, stored only as a keyed hash,
and for a double submit sealed under the form token's id, of which only a hash is kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from form_service.receipts import (
    CODE_BYTES,
    CROCKFORD,
    RESHOW_MINUTES,
    content_digest,
    new_receipt_code,
    new_report_ref,
    normalize_code,
    open_code,
    receipt_hash,
    seal_code,
    sealed_receipt,
    token_hash,
)

NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
TOKEN_ID = "0123456789abcdef0123456789abcdef"


def test_code_shape() -> None:
    code = new_receipt_code()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}", code), code
    # 20 base32 characters carry 100 bits.
    assert len(code.replace("-", "")) * 5 == 100


def test_codes_are_random() -> None:
    codes = {new_receipt_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert set("".join(codes).replace("-", "")) == set(CROCKFORD)


def test_code_is_the_first_100_bits_of_its_entropy() -> None:
    entropy = bytes.fromhex("ffeeddccbbaa99887766554433")
    assert len(entropy) == CODE_BYTES
    number = int.from_bytes(entropy, "big") >> (8 * CODE_BYTES - 100)
    digits = "".join(CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(20)))
    assert new_receipt_code(entropy).replace("-", "") == digits


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
    code = new_receipt_code()
    hashed = receipt_hash("secret", code)
    assert hashed != receipt_hash("other", code)
    assert code.replace("-", "") not in hashed.upper()
    assert len(hashed) == 64


def test_codes_made_before_random_codes_keep_their_hash() -> None:
    # A code handed out by an earlier release (an HMAC of its form token's id) is found by
    # the same keyed hash as ever.
    assert receipt_hash("s3cret", "XMXY-SMDJ-6MB3-EZZA-0BFG") == (
        "dab7240446c670dbd6553db33efa12bad4b92453115c7a8fae578383bbb57240"
    )


def test_the_sealed_code_opens_only_with_its_form_token() -> None:
    code = new_receipt_code()
    receipt = sealed_receipt(code, {"description": "canary-5e1"}, NOW)
    sealed = seal_code(TOKEN_ID, "R-AAAAAAAA", receipt)
    assert code.encode() not in sealed and b"canary" not in sealed
    assert open_code(TOKEN_ID, sealed, "R-AAAAAAAA") == receipt
    assert open_code("f" * 32, sealed, "R-AAAAAAAA") is None
    # Bound to its report: moved to another row it opens nothing.
    assert open_code(TOKEN_ID, sealed, "R-BBBBBBBB") is None
    assert open_code(TOKEN_ID, None, "R-AAAAAAAA") is None
    assert open_code(TOKEN_ID, b"short", "R-AAAAAAAA") is None


def test_the_token_is_kept_only_as_a_hash() -> None:
    hashed = token_hash(TOKEN_ID)
    assert TOKEN_ID not in hashed and len(hashed) == 64
    assert hashed == token_hash(TOKEN_ID) != token_hash("f" * 32)


def test_report_reference() -> None:
    ref = new_report_ref()
    assert re.fullmatch(r"R-[0-9A-HJKMNP-TV-Z]{8}", ref)
    assert len({new_report_ref() for _ in range(100)}) == 100


def test_report_reference_is_its_five_bytes_in_crockford_base32() -> None:
    assert new_report_ref(bytes.fromhex("00ff10a5c3")) == "R-03ZH19E3"
    assert new_report_ref(b"\xff" * 5) == "R-ZZZZZZZZ"
    assert new_report_ref(b"\0" * 5 + b"rest") == "R-00000000"


def test_the_code_is_shown_again_only_for_the_same_content_within_ten_minutes() -> None:
    receipt = sealed_receipt("CODE", {"description": "a", "people": ""}, NOW)
    same = content_digest({"people": "", "description": "a"})  # key order does not matter
    assert receipt.shows_again(same, NOW + timedelta(minutes=RESHOW_MINUTES))
    assert not receipt.shows_again(same, NOW + timedelta(minutes=RESHOW_MINUTES + 1))
    assert not receipt.shows_again(content_digest({"description": "b", "people": ""}), NOW)

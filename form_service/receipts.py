"""Receipt codes: the only key a tipster ever needs, stored only as a keyed hash.

The code is derived from the form token's id with the service secret, so a double submit
of the same form shows the same code without the code ever being stored. 100 bits make
guessing hopeless, which is why a fast keyed hash (HMAC-SHA256) is enough to store it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_BITS = 100
CODE_LENGTH = CODE_BITS // 5
GROUP = 4
REF_LENGTH = 8

# Letters people confuse with digits, and the separators they type, as Crockford decodes them.
_NORMALIZE = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


# The standard base32 alphabet, digit for digit, as Crockford's: the stdlib encoder (C) then
# writes Crockford base32.
_CROCKFORD_DIGITS = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD.encode())


def _base32(data: bytes, length: int) -> str:
    """The first *length* digits of *data* in Crockford base32, most significant first."""
    return base64.b32encode(data).translate(_CROCKFORD_DIGITS)[:length].decode("ascii")


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def receipt_code(secret: str, token_id: str) -> str:
    """The code shown to the tipster, e.g. 7K3M-9Q2X-...: 20 characters in groups of four."""
    # The first CODE_BITS bits of the MAC: 20 digits of 5 bits.
    raw = _base32(_mac(secret, "receipt:" + token_id)[: (CODE_BITS + 7) // 8], CODE_LENGTH)
    return "-".join(raw[i : i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def normalize_code(typed: str) -> str:
    """What the tipster typed, as the canonical code (case, dashes, spaces, I/L/O forgiven)."""
    cleaned = "".join(typed.split()).upper().translate(_NORMALIZE)
    return cleaned.replace("\u2010", "").replace("\u2011", "").replace("\u2013", "")


def receipt_hash(secret: str, code: str) -> str:
    return _mac(secret, "receipt-hash:" + normalize_code(code)).hex()


def new_report_ref(entropy: bytes | None = None) -> str:
    """A public reference partners and staff use (R-7K3M9Q2X); never the receipt code.

    *entropy* (at least 5 random bytes) lets a caller draw all its randomness at once.
    """
    raw = entropy[:5] if entropy is not None else secrets.token_bytes(5)
    return "R-" + _base32(raw, REF_LENGTH)

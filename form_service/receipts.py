"""Receipt codes: the only key a tipster ever needs, random and stored only as a keyed hash.

A code is 100 random bits. The database keeps a keyed hash of it (HMAC-SHA256: guessing
100 bits is hopeless, so a fast hash is enough) and, for a double submit of the same form,
the code sealed under a key only the form itself carries: its token's id, which the
database keeps only as a hash. Neither the database nor the service's secrets, nor both,
can recompute or open a code; the tipster's copy of the form can. Sealed with the code are
a digest of the report's content and the minute it was stored: the code is shown again
only to the same form sent again with the same content within ``RESHOW_MINUTES`` (a double
click, a reload), never to a copy of the form used later.

Codes made before this scheme were an HMAC of the form token's id; they are stored the
same way (the keyed hash) and keep working, and the ids they came from are forgotten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from form_service.times import minute_iso

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_BITS = 100
CODE_LENGTH = CODE_BITS // 5
CODE_BYTES = (CODE_BITS + 7) // 8
GROUP = 4
REF_LENGTH = 8
_NONCE_BYTES = 12

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


def format_code(raw: str) -> str:
    """20 code digits in groups of four: 7K3M-9Q2X-..."""
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def new_receipt_code(entropy: bytes | None = None) -> str:
    """A new code of CODE_BITS random bits; *entropy* (13 random bytes) lets a caller draw
    all its randomness at once."""
    raw = entropy[:CODE_BYTES] if entropy is not None else secrets.token_bytes(CODE_BYTES)
    return format_code(_base32(raw, CODE_LENGTH))


def normalize_code(typed: str) -> str:
    """What the tipster typed, as the canonical code (case, dashes, spaces, I/L/O forgiven)."""
    cleaned = "".join(typed.split()).upper().translate(_NORMALIZE)
    return cleaned.replace("\u2010", "").replace("\u2011", "").replace("\u2013", "")


def receipt_hash(secret: str, code: str) -> str:
    return _mac(secret, "receipt-hash:" + normalize_code(code)).hex()


def token_hash(token_id: str) -> str:
    """What the database keeps of a form token's id: enough to find a double submit."""
    return hashlib.sha256(b"form-token:" + token_id.encode()).hexdigest()


def _seal_key(token_id: str) -> bytes:
    return hashlib.sha256(b"receipt-seal:" + token_id.encode()).digest()


RESHOW_MINUTES = 10
"""How long after a report the same form, sent again with the same content, shows its code
again; later, or with other content, it only says the report was already received."""


def content_digest(content: Mapping[str, Any]) -> str:
    """A digest of what the tipster gave, to tell a double submit from a later reuse."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SealedReceipt:
    code: str
    content: str
    """``content_digest`` of the report it was given for."""
    at: str
    """The minute the report was stored."""

    def shows_again(self, content: str, now: datetime) -> bool:
        """Whether a resubmit of the form at *now* with *content* may see the code again."""
        recent = now - datetime.fromisoformat(self.at) <= timedelta(minutes=RESHOW_MINUTES)
        return recent and hmac.compare_digest(self.content, content)


def seal_code(token_id: str, report_ref: str, receipt: SealedReceipt) -> bytes:
    """The receipt, readable again only with the form token's id (a resubmit of it)."""
    plain = json.dumps({"code": receipt.code, "content": receipt.content, "at": receipt.at})
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_seal_key(token_id)).encrypt(nonce, plain.encode(), report_ref.encode())
    return nonce + sealed


def open_code(token_id: str, sealed: bytes | None, report_ref: str) -> SealedReceipt | None:
    """The receipt sealed by ``seal_code`` with this token id, or None."""
    if sealed is None:
        return None
    key = AESGCM(_seal_key(token_id))
    try:
        plain = key.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], report_ref.encode())
        found = json.loads(plain)
        return SealedReceipt(str(found["code"]), str(found["content"]), str(found["at"]))
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None


def sealed_receipt(code: str, content: Mapping[str, Any], now: datetime) -> SealedReceipt:
    return SealedReceipt(code, content_digest(content), minute_iso(now))


def new_report_ref(entropy: bytes | None = None) -> str:
    """A public reference partners and staff use (R-7K3M9Q2X); never the receipt code.

    *entropy* (at least 5 random bytes) lets a caller draw all its randomness at once.
    """
    raw = entropy[:5] if entropy is not None else secrets.token_bytes(5)
    return "R-" + _base32(raw, REF_LENGTH)

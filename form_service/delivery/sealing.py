"""Encryption of report content to a partner's age key, as ASCII armor for mail."""

from __future__ import annotations

import pyrage


def seal(plaintext: bytes, recipient: str) -> bytes:
    """*plaintext* encrypted to one age public key, ASCII-armored."""
    key = pyrage.x25519.Recipient.from_str(recipient)
    return bytes(pyrage.encrypt(plaintext, [key], armored=True))

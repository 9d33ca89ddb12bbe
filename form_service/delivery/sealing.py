"""Encryption of report content to a partner's age key, as ASCII armor for mail."""

from __future__ import annotations

import base64

import pyrage

ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = "-----END AGE ENCRYPTED FILE-----"


def seal(plaintext: bytes, recipient: str) -> bytes:
    """*plaintext* encrypted to one age public key, ASCII-armored."""
    key = pyrage.x25519.Recipient.from_str(recipient)
    try:
        return bytes(pyrage.encrypt(plaintext, [key], armored=True))
    except TypeError:
        # pyrage before 1.2 has no armor option: armor the binary file the way age does.
        return armor(bytes(pyrage.encrypt(plaintext, [key])))


def armor(binary: bytes) -> bytes:
    """The age spec's armor: strict base64 in 64-character lines between two markers."""
    text = base64.b64encode(binary).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END, ""]).encode("ascii")

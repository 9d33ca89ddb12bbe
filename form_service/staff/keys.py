"""Each staff user's age identity, readable only with their password or their live session.

The identity (an age X25519 key pair, pyrage) decrypts the keys of the reports the user may
read. At rest it is sealed with AES-256-GCM (cryptography) under a key derived from the
user's password with Argon2id (argon2-cffi's raw KDF): a copy of the database and every
server secret together still cannot open it. At sign-in it is unsealed and sealed again
under a key held only in the user's session cookie, so each request can use it and the
server keeps nothing that opens it once the session ends.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import pyrage
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALT_BYTES = 16
NONCE_BYTES = 12
SESSION_SECRET_BYTES = 32

# RFC 9106's second recommended Argon2id profile, as argon2-cffi uses for password hashes.
_KDF_TIME_COST = 3
_KDF_MEMORY_KIB = 64 * 1024
_KDF_PARALLELISM = 4


class SealError(Exception):
    """A sealed value that this key does not open (wrong password, tampered row)."""


@dataclass(frozen=True)
class Identity:
    """An unsealed age identity: its secret string and its public recipient."""

    secret: str
    recipient: str

    @classmethod
    def generate(cls) -> Identity:
        key = pyrage.x25519.Identity.generate()
        return cls(str(key), str(key.to_public()))

    @classmethod
    def parse(cls, secret: str) -> Identity:
        key = pyrage.x25519.Identity.from_str(secret)
        return cls(secret, str(key.to_public()))

    def decrypt(self, sealed: bytes) -> bytes:
        return bytes(pyrage.decrypt(sealed, [pyrage.x25519.Identity.from_str(self.secret)]))


def encrypt_to(data: bytes, recipients: list[str]) -> bytes:
    """*data* as an age file that any of *recipients* (age public keys) can open."""
    keys = [pyrage.x25519.Recipient.from_str(r) for r in recipients]
    return bytes(pyrage.encrypt(data, keys))


def password_key(password: str, salt: bytes) -> bytes:
    return hash_secret_raw(
        password.encode("utf-8"),
        salt,
        time_cost=_KDF_TIME_COST,
        memory_cost=_KDF_MEMORY_KIB,
        parallelism=_KDF_PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """AES-256-GCM with a random nonce; *context* binds the value to its row."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def unseal(key: bytes, sealed: bytes, context: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise SealError("this key does not open the value") from None


def session_id_hash(secret: bytes) -> str:
    """What the database keeps of a session (or sign-in step) secret: never the secret."""
    return hashlib.sha256(b"staff-session-id:" + secret).hexdigest()


def session_key(secret: bytes) -> bytes:
    """The key that seals the identity for one session; derived from the cookie alone."""
    return hashlib.sha256(b"staff-session-key:" + secret).digest()

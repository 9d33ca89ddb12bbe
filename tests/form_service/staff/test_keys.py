"""Sealing a staff identity under a password, and under a session's key."""

from __future__ import annotations

import os

import pyrage
import pytest

from form_service.staff.keys import (
    Identity,
    SealError,
    encrypt_to,
    password_key,
    seal,
    session_id_hash,
    session_key,
    unseal,
)


def test_an_identity_sealed_under_a_password_opens_only_with_it() -> None:
    identity = Identity.generate()
    salt = os.urandom(16)
    sealed = seal(password_key("right password!", salt), identity.secret.encode(), b"id:1")
    assert identity.secret.encode() not in sealed
    opened = unseal(password_key("right password!", salt), sealed, b"id:1")
    assert Identity.parse(opened.decode()) == identity
    with pytest.raises(SealError):
        unseal(password_key("wrong password!", salt), sealed, b"id:1")
    with pytest.raises(SealError):
        unseal(password_key("right password!", salt), sealed, b"id:2")  # another row


def test_age_files_open_with_the_identity_they_were_made_for() -> None:
    alice, bob = Identity.generate(), Identity.generate()
    sealed = encrypt_to(b"canary", [alice.recipient])
    assert alice.decrypt(sealed) == b"canary"
    with pytest.raises(pyrage.DecryptError):
        bob.decrypt(sealed)


def test_the_session_id_and_key_are_not_the_secret() -> None:
    secret = os.urandom(32)
    assert session_id_hash(secret) != session_key(secret).hex()
    assert secret.hex() not in session_id_hash(secret)

"""Staff passwords: Argon2id hashes (argon2-cffi) and the rules a new password must meet."""

from __future__ import annotations

import functools
import gzip
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256
"""Longer passwords are refused so that hashing one cannot be used to tie up the server."""

# argon2-cffi's defaults follow RFC 9106's second recommended profile (64 MiB, 3 passes).
_HASHER = PasswordHasher()

# A common password with a few digits or signs added is still a common password.
_DECORATION = "0123456789!@#$%^&*()-_=+.,?~ "


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files(__package__).joinpath("common-passwords.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str, email: str = "") -> str | None:
    """Why *password* may not be used (a message id for the page), or None when it may."""
    if len(password) < MIN_LENGTH:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    lowered = password.lower()
    stripped = lowered.strip(_DECORATION)
    known = common_passwords()
    half = len(stripped) // 2
    repeated = half > 0 and stripped[:half] == stripped[half:] and stripped[:half] in known
    if lowered in known or stripped in known or repeated:
        return "too_common"
    if email and lowered.strip(_DECORATION) == email.lower().split("@")[0]:
        return "too_common"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash of nothing anyone can type, verified when the account does not exist, so that an
# unknown e-mail address costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("\x00 no account \x00")


def spend_equal_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)

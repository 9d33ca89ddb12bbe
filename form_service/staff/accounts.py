"""Staff accounts: added from the command line, enrolled from a one-time link, signed in
with a password and then a second factor.

Nothing here keeps a client address; a failed sign-in counts against the account and
against the service as a whole, and every failure looks and takes the same.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread

from form_service.staff import keys, passwords, totp
from form_service.staff.keys import Identity, SealError
from form_service.storage import Store, Tx
from form_service.storage import staff as records
from form_service.storage.staff import (
    INTAKE_GROUP,
    PARTNER_PREFIX,
    Credentials,
    Enrolment,
    StaffUser,
)

ROLES = ("admin", "intake", "auditor")
PARTNER_ROLE = PARTNER_PREFIX

ENROL_HOURS = 24
SIGN_IN_STEP_MINUTES = 5
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)

ACCOUNT_FAILURES = 5
"""Failed sign-ins after which an account waits ACCOUNT_PAUSE before it may try again."""
ACCOUNT_PAUSE = timedelta(minutes=15)
SERVICE_FAILURES_PER_MINUTE = 60
"""Failed sign-ins, all accounts together, after which every sign-in waits a minute."""

SIGN_IN_SECONDS = 1.5
"""Every sign-in step answers after this long, right or wrong: timing tells nothing."""

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")


class AccountError(Exception):
    """A command-line request that cannot be carried out; the message says why."""


class SignInRefused(Exception):
    """Any failed sign-in step: the page always shows the same message."""


def group_of(role: str) -> str | None:
    """The key group a role reads with: the intake team's, a partner's, or none."""
    if role == "intake":
        return INTAKE_GROUP
    if role.startswith(PARTNER_ROLE):
        return role
    return None


def check_role(role: str, partner_ids: set[str]) -> str:
    if role in ROLES:
        return role
    if role.startswith(PARTNER_ROLE) and role[len(PARTNER_ROLE) :] in partner_ids:
        return role
    known = ", ".join([*ROLES, *(PARTNER_ROLE + p for p in sorted(partner_ids))])
    raise AccountError(f"unknown role {role!r}; use one of: {known}")


def normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise AccountError(f"{email!r} is not an e-mail address")
    return cleaned


def new_secret() -> str:
    """A token for a link or a hidden field: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _secret_bytes(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return b""


def token_hash(text: str) -> str:
    return keys.session_id_hash(_secret_bytes(text) or text.encode())


# -- the command line's part: add, reset, disable -------------------------------------


async def add_user(store: Store, email: str, role: str, now: datetime) -> tuple[StaffUser, str]:
    """A new invited user and the secret of their enrolment link."""
    email = normal_email(email)
    secret = new_secret()
    async with store.transaction() as tx:
        if await records.user_by(tx, email=email) is not None:
            raise AccountError(f"{email} already has an account")
        user_id = str(uuid.uuid4())
        await records.add_user(tx, user_id, email, role, now)
        await _enrolment_token(tx, user_id, secret, now)
        await records.append_event(tx, "command line", "user_added", now, detail=role)
        user = await records.user_by(tx, user_id=user_id)
    assert user is not None
    return user, secret


async def _enrolment_token(tx: Tx, user_id: str, secret: str, now: datetime) -> None:
    await records.delete_tokens(tx, user_id, "enrol")
    expires = now + timedelta(hours=ENROL_HOURS)
    await records.add_token(tx, token_hash(secret), "enrol", user_id, None, now, expires)


async def reset_user(store: Store, email: str, now: datetime) -> tuple[StaffUser, str]:
    """Everything that proved who the user is goes; a new enrolment link comes."""
    secret = new_secret()
    async with store.transaction() as tx:
        user = await _existing(tx, email)
        await records.clear_credentials(tx, user.id)
        await _enrolment_token(tx, user.id, secret, now)
        await records.append_event(tx, "command line", "user_reset", now, detail=user.email)
    return user, secret


async def disable_user(store: Store, email: str, now: datetime) -> StaffUser:
    async with store.transaction() as tx:
        user = await _existing(tx, email)
        await records.set_state(tx, user.id, "disabled")
        await records.delete_tokens(tx, user.id, "session")
        await records.delete_tokens(tx, user.id, "signin")
        await records.delete_tokens(tx, user.id, "enrol")
        await records.append_event(tx, "command line", "user_disabled", now, detail=user.email)
    return user


async def list_users(store: Store) -> list[StaffUser]:
    async with store.transaction() as tx:
        return await records.users(tx)


async def _existing(tx: Tx, email: str) -> StaffUser:
    user = await records.user_by(tx, email=normal_email(email))
    if user is None:
        raise AccountError(f"no account for {email}")
    return user


# -- enrolment ----------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    user: StaffUser
    token_hash: str


async def invitation(store: Store, secret: str, now: datetime) -> Invitation | None:
    hashed = token_hash(secret)
    async with store.transaction() as tx:
        found = await records.token(tx, hashed, "enrol", now)
        if found is None:
            return None
        user = await records.user_by(tx, user_id=found.user_id)
    if user is None or user.state != "invited":
        return None
    return Invitation(user, hashed)


@dataclass(frozen=True)
class Enrolled:
    user: StaffUser
    recovery_codes: list[str]


async def enrol(
    store: Store,
    invited: Invitation,
    password: str,
    totp_secret: str,
    step: int,
    now: datetime,
) -> Enrolled:
    """Seal a new identity and second factor under the password; the team key too, when
    this user is the first of their group (later members are granted it by a holder)."""
    salt = os.urandom(keys.SALT_BYTES)
    identity = Identity.generate()
    key, hashed = await anyio.to_thread.run_sync(
        lambda: (keys.password_key(password, salt), passwords.hash_password(password))
    )
    user = invited.user
    codes = totp.new_recovery_codes()
    enrolment = Enrolment(
        password_hash=hashed,
        kdf_salt=salt,
        identity_sealed=keys.seal(key, identity.secret.encode(), _context("identity", user.id)),
        recipient=identity.recipient,
        totp_sealed=keys.seal(key, totp_secret.encode(), _context("totp", user.id)),
        totp_step=step,
        recovery_hashes=tuple(totp.recovery_hash(code) for code in codes),
    )
    async with store.transaction() as tx:
        if await records.delete_token(tx, invited.token_hash) != 1:
            raise SignInRefused  # the link was used meanwhile
        await records.complete_enrolment(tx, user.id, enrolment)
        group = group_of(user.role)
        if group is not None and await records.group_recipient(tx, group) is None:
            team = Identity.generate()
            await records.add_group(tx, group, team.recipient, now)
            sealed = keys.encrypt_to(team.secret.encode(), [identity.recipient])
            await records.grant_group(tx, group, user.id, sealed)
        await records.append_event(tx, user.email, "enrolled", now)
    return Enrolled(user, [totp.display_recovery(code) for code in codes])


def _context(purpose: str, user_id: str) -> bytes:
    return f"{purpose}:{user_id}".encode()


# -- sign-in ------------------------------------------------------------------------


class FailureWindow:
    """Failed sign-ins of the last minute, all accounts together (no client is kept)."""

    def __init__(self, limit: int = SERVICE_FAILURES_PER_MINUTE) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def _trim(self) -> None:
        cutoff = time.monotonic() - 60
        while self._times and self._times[0] < cutoff:
            self._times.popleft()

    def full(self) -> bool:
        self._trim()
        return len(self._times) >= self.limit

    def add(self) -> None:
        self._times.append(time.monotonic())


def _paused(found: Credentials, now: datetime) -> bool:
    if found.failures < ACCOUNT_FAILURES or found.failed_at is None:
        return False
    failed = datetime.strptime(found.failed_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    return now.replace(tzinfo=None) < failed + ACCOUNT_PAUSE


async def check_password(
    store: Store, email: str, password: str, now: datetime, window: FailureWindow
) -> str:
    """The secret of the sign-in step that asks for the code; SignInRefused otherwise."""
    try:
        address = normal_email(email)
    except AccountError:
        address = ""
    async with store.transaction() as tx:
        found = await records.credentials(tx, address) if address else None
    usable = (
        found is not None
        and found.user.state == "active"
        and found.password_hash is not None
        and not _paused(found, now)
        and not window.full()
        and len(password) <= passwords.MAX_LENGTH
    )
    if not usable or found is None or found.password_hash is None:
        # The same work as a real check, so an unknown address answers no sooner.
        await anyio.to_thread.run_sync(passwords.spend_equal_time, password[:256])
        await _failed(store, found, now, window)
        raise SignInRefused
    stored_hash = found.password_hash
    if not await anyio.to_thread.run_sync(passwords.verify_password, stored_hash, password):
        await _failed(store, found, now, window)
        raise SignInRefused
    assert found.kdf_salt is not None and found.identity_sealed and found.totp_sealed
    salt = found.kdf_salt
    key = await anyio.to_thread.run_sync(keys.password_key, password, salt)
    user_id = found.user.id
    opened = {
        "identity": keys.unseal(key, found.identity_sealed, _context("identity", user_id)),
        "totp": keys.unseal(key, found.totp_sealed, _context("totp", user_id)),
    }
    secret = new_secret()
    sealed = keys.seal(
        keys.session_key(_secret_bytes(secret)),
        json.dumps({k: v.decode() for k, v in opened.items()}).encode(),
        b"signin",
    )
    expires = now + timedelta(minutes=SIGN_IN_STEP_MINUTES)
    async with store.transaction() as tx:
        await records.add_token(tx, token_hash(secret), "signin", user_id, sealed, now, expires)
    return secret


async def _failed(
    store: Store, found: Credentials | None, now: datetime, window: FailureWindow
) -> None:
    window.add()
    async with store.transaction() as tx:
        if found is not None:
            await records.record_failure(tx, found.user.id, now)
        actor = found.user.email if found is not None else "unknown account"
        await records.append_event(tx, actor, "sign_in_failed", now)


@dataclass(frozen=True)
class Session:
    """A signed-in user, for one request."""

    user: StaffUser
    identity: Identity
    totp_secret: str
    id_hash: str
    csrf: str
    created_at: str


async def check_code(
    store: Store, step_secret: str, code: str, now: datetime, window: FailureWindow
) -> tuple[Session, str]:
    """The new session and its cookie secret, once the code (or a recovery code) fits."""
    step_hash = token_hash(step_secret)
    async with store.transaction() as tx:
        step = await records.token(tx, step_hash, "signin", now)
        user = await records.user_by(tx, user_id=step.user_id) if step else None
    if step is None or step.sealed is None or user is None or window.full():
        await _failed(store, None, now, window)
        raise SignInRefused
    try:
        opened = json.loads(
            keys.unseal(keys.session_key(_secret_bytes(step_secret)), step.sealed, b"signin")
        )
    except (SealError, ValueError):
        raise SignInRefused from None
    async with store.transaction() as tx:
        accepted = await _second_factor(tx, user.id, opened["totp"], code)
        if accepted:
            await records.delete_token(tx, step_hash)
            await records.clear_failures(tx, user.id)
            secret = new_secret()
            await _open_session(tx, user, opened, secret, now)
            await records.append_event(tx, user.email, "signed_in", now)
    if not accepted:
        async with store.transaction() as tx:
            found = await records.credentials(tx, user.email)
        await _failed(store, found, now, window)
        raise SignInRefused
    session = await session_for(store, secret, now)
    assert session is not None
    return session, secret


async def _second_factor(tx: Tx, user_id: str, totp_secret: str, code: str) -> bool:
    rows = await tx.fetch("SELECT totp_last_step FROM staff_users WHERE id = ?", (user_id,))
    last = int(rows[0][0]) if rows else 0
    step = totp.accept_code(totp_secret, code, last)
    if step is not None:
        return await records.use_totp_step(tx, user_id, step)
    cleaned = "".join(code.split())
    if len(cleaned) >= 12:
        return await records.use_recovery_code(tx, user_id, totp.recovery_hash(cleaned))
    return False


async def _open_session(
    tx: Tx, user: StaffUser, opened: dict[str, str], secret: str, now: datetime
) -> None:
    """The identity and the code's secret, sealed under a key only the cookie holds."""
    raw = _secret_bytes(secret)
    sealed = keys.seal(keys.session_key(raw), json.dumps(opened).encode(), b"session")
    await records.add_token(
        tx, token_hash(secret), "session", user.id, sealed, now, now + SESSION_ABSOLUTE
    )


async def session_for(store: Store, secret: str, now: datetime) -> Session | None:
    """The live session of a cookie: not expired, not idle too long, its user still active.

    A new id is made at every sign-in; an unknown, fixated or forged id finds nothing."""
    raw = _secret_bytes(secret)
    if len(raw) != 32:
        return None
    hashed = keys.session_id_hash(raw)
    async with store.transaction() as tx:
        found = await records.token(tx, hashed, "session", now)
        if found is None or found.sealed is None:
            return None
        last_seen = datetime.strptime(found.last_seen_at, "%Y-%m-%dT%H:%M:%S.%fZ")
        user = await records.user_by(tx, user_id=found.user_id)
        if now.replace(tzinfo=None) - last_seen > SESSION_IDLE or user is None:
            await records.delete_token(tx, hashed)
            return None
        if user.state != "active":
            return None
        await records.touch_token(tx, hashed, now)
    try:
        opened = json.loads(keys.unseal(keys.session_key(raw), found.sealed, b"session"))
    except (SealError, ValueError):
        return None
    csrf = keys.session_id_hash(keys.session_key(raw) + b"csrf")
    identity = Identity.parse(opened["identity"])
    return Session(user, identity, opened["totp"], hashed, csrf, found.created_at)


async def sign_out(store: Store, session: Session, everywhere: bool, now: datetime) -> None:
    async with store.transaction() as tx:
        if everywhere:
            await records.delete_tokens(tx, session.user.id, "session")
        else:
            await records.delete_token(tx, session.id_hash)
        action = "signed_out_everywhere" if everywhere else "signed_out"
        await records.append_event(tx, session.user.email, action, now)


async def fresh_code(store: Store, session: Session, code: str) -> bool:
    """A sensitive action asks for a new code: it must be valid and not used before."""
    async with store.transaction() as tx:
        rows = await tx.fetch(
            "SELECT totp_last_step FROM staff_users WHERE id = ?", (session.user.id,)
        )
        step = totp.accept_code(session.totp_secret, code, int(rows[0][0]) if rows else 0)
        return step is not None and await records.use_totp_step(tx, session.user.id, step)


def pause(started: float) -> float:
    return max(0.0, started + SIGN_IN_SECONDS - time.monotonic())


async def answer_after(started: float) -> None:
    await asyncio.sleep(pause(started))

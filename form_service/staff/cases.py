"""Reading a case: the team key opened with the user's identity, then the report with it.

Report content is sealed (age) to the offline archive key and to the intake team's key;
the team key is sealed to each member's identity, which only their password or their
live session opens. Notes are sealed to the team key too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyrage

from form_service.staff.accounts import Session
from form_service.staff.keys import Identity, encrypt_to
from form_service.storage import Tx
from form_service.storage import staff as records
from form_service.storage.staff import INTAKE_GROUP


class Sealed(Exception):
    """This user holds no key that opens the value (granted later, or sealed before)."""


async def team_identity(tx: Tx, session: Session, group: str = INTAKE_GROUP) -> Identity:
    sealed = await records.group_key(tx, group, session.user.id)
    if sealed is None:
        raise Sealed
    try:
        return Identity.parse(session.identity.decrypt(sealed).decode())
    except pyrage.DecryptError:
        raise Sealed from None


def open_content(team: Identity, sealed: bytes | None) -> dict[str, Any]:
    if sealed is None:
        raise Sealed
    try:
        content: dict[str, Any] = json.loads(team.decrypt(sealed))
    except pyrage.DecryptError:
        raise Sealed from None
    return content


@dataclass(frozen=True)
class OpenNote:
    author: str
    at: str
    text: str


def open_notes(team: Identity, notes: list[records.Note]) -> list[OpenNote]:
    opened = []
    for note in notes:
        try:
            text = team.decrypt(note.body_age).decode("utf-8")
        except pyrage.DecryptError:
            text = ""
        opened.append(OpenNote(note.author, note.at, text))
    return opened


def seal_note(team: Identity, text: str) -> bytes:
    return encrypt_to(text.encode("utf-8"), [team.recipient])

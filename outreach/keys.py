"""Archive key pairs: `outreach keygen`.

Reports are stored encrypted with age to the public keys in the profile's
``archive.age_recipients``. The private half decrypts them, so it belongs with the people who
read reports, on a machine other than the report server: a copy of the server (a stolen
disk, a backup, an intruder) must not be able to read what tipsters wrote.

The key file has the format age-keygen writes, so the ``age`` tool and any age library
read it as an identity file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import pyrage

PRIVATE_PREFIX = "AGE-SECRET-KEY-1"


class KeyFileError(click.ClickException):
    """The private key could not be written where asked; nothing was written."""


@dataclass(frozen=True)
class KeyPair:
    public: str
    """The recipient, ``age1…``: goes into agency.yml."""
    private: str
    """The identity, ``AGE-SECRET-KEY-1…``: never on the report server."""

    def identity_file(self, created: datetime) -> str:
        stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"# created: {stamp}\n# public key: {self.public}\n{self.private}\n"


def generate_key_pair() -> KeyPair:
    identity = pyrage.x25519.Identity.generate()
    return KeyPair(public=str(identity.to_public()), private=str(identity))


def write_identity_file(path: Path, pair: KeyPair, created: datetime | None = None) -> None:
    """Create *path* readable and writable by its owner only; never replace a file."""
    text = pair.identity_file(created or datetime.now(UTC))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} already exists; not overwriting it (it may hold a key still needed "
            "to read stored reports). Choose another file name."
        ) from None
    except OSError as error:
        raise KeyFileError(f"Cannot create {path}: {error.strerror}.") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(text)


def read_identity_file(path: Path) -> str:
    """The private key in an identity file (the one line that is not a comment)."""
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith(PRIVATE_PREFIX):
            return line.strip()
    raise KeyFileError(f"{path} holds no age private key.")


NEVER_ON_THE_SERVER = (
    "The private key decrypts every stored report. Keep it only where reports are read,\n"
    "offline or in a password manager, and NEVER on the report server or in agency.yml."
)


def keygen(out: Path | None) -> None:
    """Make a key pair; print the public key, and save or show the private one."""
    pair = generate_key_pair()
    if out is not None:
        write_identity_file(out, pair)
    click.echo(
        "Public key: put it FIRST under archive.age_recipients in agency.yml\n"
        "(keep the previous key listed below it until everyone who reads reports has this\n"
        "new private key; see guide/keys.md):\n"
        f"  {pair.public}"
    )
    if out is not None:
        click.echo(
            f"\nPrivate key written to {out} (readable by you alone).\n{NEVER_ON_THE_SERVER}"
        )
        return
    click.echo(
        "\nWARNING: the private key is shown below ONCE and saved nowhere.\n"
        f"{NEVER_ON_THE_SERVER}\n"
        "Copy it now, or run again with --out FILE to have it written to a file.\n"
        f"  {pair.private}",
        err=True,
    )

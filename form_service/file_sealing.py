"""A cleaned file, encrypted as it streams: never written in plaintext.

Two copies are made in one pass over the cleaned bytes:

- the **archive copy**, one age file to the same recipients as the report (the offline
  archive key and the intake team's key), kept as long as the report;
- the **delivery copy**, AES-256-GCM in pieces of ``PIECE_BYTES`` under a key derived from
  the service's secret, which the delivery worker opens to send the file to the partners
  whose agreement allows it, and which is deleted once they all have it. A copy of the
  database alone opens neither.

Both are written to temporary files in the upload folder (ciphertext only) and read back
into the database a piece at a time, so no file is ever whole in memory.

A photo is cleaned after the receipt (form_service/waiting_files.py): until then the store
holds it **as sent**, sealed like a delivery copy but under a key of its own, so that no
code path that opens delivery copies can open a file that still carries its tags.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from form_service.private_files import FILE_MODE

PIECE_BYTES = 1024 * 1024
_NONCE_BYTES = 12
_LENGTH = struct.Struct(">I")


DELIVERY_KEY = b"attachment-delivery:"
AS_SENT_KEY = b"attachment-as-sent:"
"""What each key is derived for, with the service's secret."""


def _key(purpose: bytes, secret: str) -> bytes:
    return hashlib.sha256(purpose + secret.encode()).digest()


def _piece_aad(file_id: str, index: int) -> bytes:
    return f"{file_id}:{index}".encode()


class _PieceSealer:
    """Plaintext in, sealed pieces out (each with its length before it), to *out*."""

    def __init__(self, key: bytes, file_id: str, out: IO[bytes]) -> None:
        self._aead = AESGCM(key)
        self._file_id = file_id
        self._out = out
        self._buffer = bytearray()
        self.pieces = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= PIECE_BYTES:
            self._seal(bytes(self._buffer[:PIECE_BYTES]))
            del self._buffer[:PIECE_BYTES]

    def close(self) -> None:
        if self._buffer or not self.pieces:
            self._seal(bytes(self._buffer))
            self._buffer.clear()

    def _seal(self, plain: bytes) -> None:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, _piece_aad(self._file_id, self.pieces))
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self.pieces += 1


class _Tee(io.RawIOBase):
    """Reads *source* for age, handing each piece read to the delivery sealer as well."""

    def __init__(self, source: IO[bytes], sealer: _PieceSealer) -> None:
        self._source = source
        self._sealer = sealer
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        self._sealer.write(data)
        self.size += len(data)
        return len(data)


@dataclass(frozen=True)
class SealedCopies:
    file_id: str
    size: int
    """Bytes of the cleaned file."""
    archive: Path
    delivery: Path
    delivery_pieces: int


def _temp(folder: Path) -> tuple[IO[bytes], Path]:
    fd, name = tempfile.mkstemp(dir=folder, prefix="sealed-")
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w+b"), Path(name)


def seal(
    source: IO[bytes],
    recipients: Sequence[str],
    secret: str,
    folder: Path,
    file_id: str | None = None,
) -> SealedCopies:
    """Both copies of what *source* yields, as temporary files in *folder* (the caller
    removes them), for the file *file_id* (a new one when None)."""
    file_id = file_id or os.urandom(16).hex()
    archive_out, archive_path = _temp(folder)
    delivery_out, delivery_path = _temp(folder)
    try:
        sealer = _PieceSealer(_key(DELIVERY_KEY, secret), file_id, delivery_out)
        tee = _Tee(source, sealer)
        keys = [pyrage.x25519.Recipient.from_str(r) for r in recipients]
        pyrage.encrypt_io(tee, archive_out, keys)
        sealer.close()
    except BaseException:
        archive_path.unlink(missing_ok=True)
        delivery_path.unlink(missing_ok=True)
        raise
    finally:
        archive_out.close()
        delivery_out.close()
    return SealedCopies(file_id, tee.size, archive_path, delivery_path, sealer.pieces)


def seal_as_sent(path: Path, secret: str, folder: Path) -> tuple[str, Path]:
    """The file in *path*, unchanged, sealed in pieces under the as-sent key to a temporary
    file in *folder* (the caller removes it): its new id and that file's path."""
    file_id = os.urandom(16).hex()
    out, sealed_path = _temp(folder)
    try:
        sealer = _PieceSealer(_key(AS_SENT_KEY, secret), file_id, out)
        with path.open("rb") as source:
            while data := source.read(PIECE_BYTES):
                sealer.write(data)
        sealer.close()
    except BaseException:
        sealed_path.unlink(missing_ok=True)
        raise
    finally:
        out.close()
    return file_id, sealed_path


def archive_pieces(path: Path) -> Iterator[bytes]:
    """The archive copy in pieces, to store one row each."""
    with path.open("rb") as sealed:
        while piece := sealed.read(PIECE_BYTES):
            yield piece


def delivery_pieces(path: Path) -> Iterator[bytes]:
    """The delivery copy's sealed pieces, one row each."""
    with path.open("rb") as sealed:
        while header := sealed.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            yield sealed.read(length)


class CopyUnreadable(Exception):
    """A delivery copy that none of the service's secrets opens (or that was tampered with)."""


def open_delivery(file_id: str, pieces: Sequence[bytes], secrets: Sequence[str]) -> bytes:
    """The cleaned file again, from its delivery copy's pieces."""
    return _open(DELIVERY_KEY, file_id, pieces, secrets)


def open_as_sent(file_id: str, pieces: Sequence[bytes], secrets: Sequence[str]) -> bytes:
    """A file waiting to be cleaned, as the tipster sent it (seal_as_sent's pieces)."""
    return _open(AS_SENT_KEY, file_id, pieces, secrets)


def _open(purpose: bytes, file_id: str, pieces: Sequence[bytes], secrets: Sequence[str]) -> bytes:
    for secret in secrets:
        aead = AESGCM(_key(purpose, secret))
        try:
            return b"".join(
                aead.decrypt(p[:_NONCE_BYTES], p[_NONCE_BYTES:], _piece_aad(file_id, n))
                for n, p in enumerate(pieces)
            )
        except InvalidTag:
            continue
    raise CopyUnreadable(file_id)

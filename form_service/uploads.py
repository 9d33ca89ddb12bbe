"""Reading a report form sent as multipart/form-data: its text as form_input reads it, its
files streamed to temporary files in the data dir, each piece counted as it arrives.

Nothing is read whole into memory: python-multipart's streaming parser hands over each
piece of the body as it comes, a file's pieces go straight to its temporary file, and
reading stops as soon as the body is past the limit (text allowance plus files). A file
over its own limit (by the type its first bytes show) is marked and its further bytes
dropped; the form is still read to its end, so the tipster's text comes back with the
message. The names the browser gives the files are never kept: only their order.

The temporary files hold the only plaintext of a file the service ever writes; the caller
opens ``receive_files`` with ``async with`` and they are removed when it ends, however it
ends (an answer, an error, the client gone half-way).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from form_service.file_types import HEAD_BYTES, Kind, sniff
from form_service.form_input import BodyTooLarge, NotAForm, ParsedForm, decode_text
from form_service.private_files import FILE_MODE, private_folder

if TYPE_CHECKING:  # a type python-multipart declares for type checkers only
    from python_multipart.multipart import MultipartCallbacks

MULTIPART_TYPE = "multipart/form-data"
FILE_FIELD = "files"
MAX_FILES = 5
UPLOAD_FOLDER = "uploads"
# A text field of a report is a few thousand characters at most (report_form.py); the
# limit on the whole body refuses more. Headers of a part: python-multipart's own limits.
_MAX_PART_HEADERS = 8


class BadMultipart(Exception):
    """A body that is not readable multipart: no boundary, broken framing, too many parts."""


@dataclass(frozen=True)
class FileLimits:
    image: int
    video: int
    report: int
    """All files of one report together."""

    def of(self, kind: Kind | None) -> int:
        return self.video if kind is Kind.video else self.image


@dataclass
class ReceivedFile:
    """One file as it arrived: where its bytes are, how many, and what its start says."""

    path: Path
    size: int = 0
    head: bytes = b""
    too_large: bool = False
    """Past its limit: the rest of it was not kept."""

    @property
    def kind(self) -> Kind | None:
        return sniff(self.head)


@dataclass
class ReceivedForm:
    form: ParsedForm
    files: list[ReceivedFile] = field(default_factory=list)
    too_many_files: bool = False
    body_too_large: bool = False
    """Reading stopped at the body's limit: the fields after that point are missing."""
    broken: bool = False
    """The body broke the multipart framing, or had too many parts: reading stopped there."""


class _Reader:
    """The parser's callbacks: text parts into memory (bounded by the body limit), file
    parts to their temporary files."""

    def __init__(
        self, folder: Path, limits: FileLimits, known: Collection[str], text_bytes: int
    ) -> None:
        self.folder = folder
        self.text_left = text_bytes
        self.limits = limits
        self.known = known
        self.values: dict[str, str] = {}
        self.unreadable: set[str] = set()
        self.repeated: set[str] = set()
        self.count = 0
        self.files: list[ReceivedFile] = []
        self.too_many_files = False
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_count = 0
        self._name = ""
        self._is_file = False
        self._text = bytearray()
        self._file: ReceivedFile | None = None
        self._out: IO[bytes] | None = None

    # -- the parser's callbacks --------------------------------------------------------

    def on_part_begin(self) -> None:
        self._headers = {}
        self._header_count = 0
        self._text = bytearray()
        self._file = None
        self.count += 1

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._header_name.lower()] = (
            self._headers.get(self._header_name.lower(), b"") + data[start:end]
        )

    def on_header_end(self) -> None:
        self._header_name = b""
        self._header_count += 1
        if self._header_count > _MAX_PART_HEADERS:
            raise BadMultipart("too many headers in a part")

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", errors="replace")
        # A file part is one with a filename parameter, whatever it says (never kept).
        self._is_file = self._name == FILE_FIELD and b"filename" in options
        if self._is_file:
            self._begin_file()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._is_file:
            self._file_data(piece)
        elif self._name in self.known and self._name not in self.values:
            self.text_left -= len(piece)
            if self.text_left < 0:
                raise BodyTooLarge
            self._text += piece

    def on_part_end(self) -> None:
        if self._is_file:
            self._end_file()
            return
        if self._name not in self.known:
            return
        if self._name in self.values:
            self.repeated.add(self._name)
            return
        text, readable = decode_text(bytes(self._text))
        self.values[self._name] = text
        if not readable:
            self.unreadable.add(self._name)

    # -- files -------------------------------------------------------------------------

    def _begin_file(self) -> None:
        if len(self.files) >= MAX_FILES:
            self.too_many_files = True
            return
        fd, name = tempfile.mkstemp(dir=self.folder, prefix="upload-")
        os.fchmod(fd, FILE_MODE)
        self._file = ReceivedFile(Path(name))
        self.files.append(self._file)
        self._out = os.fdopen(fd, "wb")

    def _file_data(self, piece: bytes) -> None:
        received = self._file
        if received is None or self._out is None or received.too_large:
            return
        if len(received.head) < HEAD_BYTES:
            received.head += piece[: HEAD_BYTES - len(received.head)]
        received.size += len(piece)
        if received.size > self.limits.of(received.kind):
            received.too_large = True
            self._out.truncate(0)
            return
        self._out.write(piece)

    def _end_file(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        # A file field left empty arrives as a part with an empty filename and no bytes.
        if self._file is not None and self._file.size == 0 and not self._file.head:
            empty_choice = self._headers.get(b"content-disposition", b"").endswith(b'filename=""')
            if empty_choice:
                self.files.remove(self._file)
                self._file.path.unlink(missing_ok=True)
        self._file = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def parsed(self) -> ParsedForm:
        return ParsedForm(
            self.values, frozenset(self.unreadable), frozenset(self.repeated), self.count
        )


def is_multipart(request: Request) -> bool:
    media = request.headers.get("content-type", "").partition(";")[0]
    return media.strip().lower() == MULTIPART_TYPE


def _boundary(request: Request) -> bytes:
    media, options = parse_options_header(request.headers.get("content-type", ""))
    if media != MULTIPART_TYPE.encode():
        raise NotAForm
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise BadMultipart("no usable boundary")
    return boundary


@contextlib.asynccontextmanager
async def receive_files(
    request: Request,
    data_dir: Path,
    text_bytes: int,
    limits: FileLimits,
    known: Collection[str],
    max_parts: int,
) -> AsyncIterator[ReceivedForm]:
    """The form read from *request*; its temporary files are removed when the block ends.

    Raises NotAForm for another media type, BadMultipart for a body without a usable
    boundary, BodyTooLarge for text past *text_bytes* (files have their own limits)."""
    boundary = _boundary(request)
    folder = private_folder(data_dir / UPLOAD_FOLDER)
    reader = _Reader(folder, limits, known, text_bytes)
    parser = MultipartParser(boundary, _callbacks(reader))
    limit = text_bytes + limits.report
    size = 0
    too_large = broken = False
    try:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                # The part of the body within the limit is still read: the text before it.
                parser.write(chunk[: len(chunk) - max(0, size - limit)])
                if reader.count > max_parts:
                    raise BadMultipart("too many parts")
                if size > limit:
                    too_large = True
                    break
            if not too_large:
                parser.finalize()
        except (MultipartParseError, BadMultipart):
            # What was read so far is still the tipster's text, to show again.
            broken = True
        finally:
            reader.close()
        yield ReceivedForm(reader.parsed(), reader.files, reader.too_many_files, too_large, broken)
    finally:
        for received in reader.files:
            received.path.unlink(missing_ok=True)


def _callbacks(reader: _Reader) -> MultipartCallbacks:
    return {
        "on_part_begin": reader.on_part_begin,
        "on_part_data": reader.on_part_data,
        "on_part_end": reader.on_part_end,
        "on_header_field": reader.on_header_field,
        "on_header_value": reader.on_header_value,
        "on_header_end": reader.on_header_end,
        "on_headers_finished": reader.on_headers_finished,
    }

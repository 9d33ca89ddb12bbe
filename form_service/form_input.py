"""Reading a urlencoded form body within limits, without losing a character the tipster sent.

Starlette's own parser decodes invalid UTF-8 silently (as replacement characters or
Latin-1), which would hide broken input from the tipster; this reader marks such fields so
the page can say which text needs a look. Bodies are capped before and while they are read.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
# Control characters no keyboard types: NUL and friends (tab and line breaks are kept).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
REPLACEMENT = "\ufffd"


class BodyTooLarge(Exception):
    pass


class NotAForm(Exception):
    pass


@dataclass(frozen=True)
class ParsedForm:
    values: dict[str, str]
    """The first value of each known field."""
    unreadable: frozenset[str]
    """Fields whose bytes were not UTF-8 text or held control characters (now shown as �)."""
    repeated: frozenset[str]
    field_count: int


def _media_type(request: Request) -> tuple[str, str]:
    raw = request.headers.get("content-type", "")
    media, _, params = raw.partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused (BodyTooLarge) as soon as it is known to exceed max_bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise BodyTooLarge
    media, charset = _media_type(request)
    if media != FORM_TYPE or charset not in {"", "utf-8", "utf8"}:
        raise NotAForm
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def decode_text(raw: bytes) -> tuple[str, bool]:
    try:
        text = raw.decode("utf-8")
        readable = True
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        readable = False
    if _CONTROL.search(text):
        text = _CONTROL.sub(REPLACEMENT, text)
        readable = False
    return text, readable


def parse_form(body: bytes, known: Collection[str]) -> ParsedForm:
    values: dict[str, str] = {}
    unreadable: set[str] = set()
    repeated: set[str] = set()
    count = 0
    for part in body.split(b"&"):
        if not part:
            continue
        count += 1
        raw_name, _, raw_value = part.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", errors="replace")
        if name not in known:
            continue
        if name in values:
            repeated.add(name)
            continue
        text, readable = decode_text(unquote_to_bytes(raw_value.replace(b"+", b" ")))
        values[name] = text
        if not readable:
            unreadable.add(name)
    return ParsedForm(values, frozenset(unreadable), frozenset(repeated), count)


async def read_form(request: Request, max_bytes: int, known: Collection[str]) -> ParsedForm:
    return parse_form(await read_body(request, max_bytes), known)

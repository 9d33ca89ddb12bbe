"""What kind of file a tipster sent, decided by its first bytes, never by its name or the
Content-Type the browser claimed (both are the sender's to choose)."""

from __future__ import annotations

from enum import StrEnum

HEAD_BYTES = 32
"""Bytes of a file's start enough to tell every accepted type."""


class Kind(StrEnum):
    image = "image"
    video = "video"


# ISO base media files (MP4, MOV, HEIF) say what they are in their first box, "ftyp",
# by a brand: HEIF's are images, the rest of those accepted are videos.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_VIDEO_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  "}
)


def _iso_brand(head: bytes) -> bytes | None:
    return head[8:12] if head[4:8] == b"ftyp" else None


def sniff(head: bytes) -> Kind | None:
    """The kind of a file starting with *head* (its first HEAD_BYTES), or None when it is
    no type accepted."""
    if head.startswith(b"\xff\xd8\xff"):  # JPEG
        return Kind.image
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind.image
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Kind.image
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Kind.image
    brand = _iso_brand(head)
    if brand in _HEIF_BRANDS:
        return Kind.image
    if brand in _VIDEO_BRANDS:
        return Kind.video
    # QuickTime files from older cameras may start with another atom than ftyp.
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return Kind.video
    return None

"""Files made safe to keep: nothing in them that identifies the tipster or their device.

A phone photo carries where it was taken (EXIF GPS), the phone's make, model and serial,
times, the owner's name (EXIF artist, XMP, IPTC) and free text (PNG text chunks, JPEG and
GIF comments). Removing tags one by one misses those nobody listed, so an image is decoded
and its pixels alone written into a new file by Pillow, with the orientation EXIF asked for
applied first (the picture then looks as the tipster saw it). A video cannot be decoded and
encoded again cheaply, so ffmpeg copies its video and audio streams, and only those, into a
new MP4 without any metadata; where ffmpeg is absent, videos are refused.

Decompression bombs (a small file declaring a huge picture) are refused from the header
before any pixel is decoded, as are GIFs with too many frames and files that fail to decode.

A photo is checked before the receipt (``inspect_image``: its header, its size, whether the
file ends where its format says it must) and decoded after it (form_service/
waiting_files.py): decoding a phone photo costs tens of milliseconds of a core, which ten
tipsters sending at once would otherwise wait for in turn. What the cleaned file will be
(JPEG, PNG or GIF) is decided from the header, so the report's partners are told it at once.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO

from PIL import Image, ImageFile, ImageOps, ImageSequence, UnidentifiedImageError

from form_service.file_types import Kind, sniff

MAX_PIXELS = 50_000_000
"""The largest picture accepted, in pixels (a 48-megapixel phone photo fits)."""
MAX_FRAMES = 300
"""The most frames an animated GIF may have."""
MAX_ANIMATION_PIXELS = 150_000_000
"""Frames times pixels of an animated GIF: what decoding it all costs."""
KEPT_LONG_SIDE = 1600
"""A JPEG at least twice this size on its long side is decoded at a smaller scale.

JPEG decodes at 1/2, 1/4 or 1/8 of its size almost for free; the smallest of those scales
that leaves the long side at least this many pixels is used (a 12-megapixel phone photo
is kept at 2016 x 1512, as messaging apps send photos). The team needs to see the picture
on a screen, not print it; a photo then costs a quarter of the time, memory and mail
size, so a partner's mailbox takes a report's five photos in one message."""
VIDEO_SECONDS = 300
"""How long ffmpeg may take to copy one video."""

_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "HEIF"]


class Refusal(StrEnum):
    """Why a file was refused (the form says it in the tipster's language)."""

    too_many = "too_many"
    report_too_large = "report_too_large"
    empty = "empty"
    unknown_type = "unknown_type"
    too_large = "too_large"
    too_many_pixels = "too_many_pixels"
    too_many_frames = "too_many_frames"
    undecodable = "undecodable"
    no_video_tool = "no_video_tool"


class Refused(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


def _register_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF = _register_heif()


GIF = "image/gif"
PNG = "image/png"
JPEG = "image/jpeg"
_KEPT_AS_PNG = ("RGBA", "LA", "P", "PA", "1", "I;16", "I")
"""Modes with transparency, a palette or more than 8 bits: PNG keeps them; others are JPEG."""


def _target(image: Image.Image, frames: int) -> str:
    """The media type *image* is written as, from its header alone."""
    if frames > 1 and image.format == "GIF":
        return GIF
    return PNG if image.mode in _KEPT_AS_PNG else JPEG


def _save(image: Image.Image, out: IO[bytes], media: str) -> None:
    """Write *image*'s pixels (no metadata) to *out* as *media*."""
    image.info = {}
    if media == GIF:
        frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
        for frame in frames:
            frame.info = {}
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0)
    elif media == PNG:
        _in_mode(image, "RGBA").save(out, "PNG", optimize=False)
    else:
        _in_mode(image, "RGB").save(out, "JPEG", quality=90)


def _in_mode(image: Image.Image, mode: str) -> Image.Image:
    # convert() copies even to the mode the image has: a photo's pixels twice over.
    return image if image.mode == mode else image.convert(mode)


def _check_size(image: Image.Image, max_pixels: int) -> int:
    width, height = image.size
    if width * height > max_pixels:
        raise Refused(Refusal.too_many_pixels)
    frames = int(getattr(image, "n_frames", 1))
    if frames > MAX_FRAMES or frames * width * height > MAX_ANIMATION_PIXELS:
        raise Refused(Refusal.too_many_frames)
    return frames


def _decode_smaller(image: Image.Image) -> None:
    width, height = image.size
    long_side = max(width, height)
    if image.format == "JPEG" and long_side >= 2 * KEPT_LONG_SIDE:
        # draft() picks the smallest scale that is still at least the size asked for.
        keep = KEPT_LONG_SIDE / long_side
        image.draft("RGB", (math.ceil(width * keep), math.ceil(height * keep)))


@contextmanager
def _opened(source: Path | IO[bytes], max_pixels: int) -> Iterator[tuple[Image.Image, str]]:
    """The picture in *source*, its size checked, and what it will be written as. Raises
    Refused for every way a file can fail to open."""
    # WeasyPrint (the staff's PDFs, in this process) turns on Pillow's global leniency for
    # truncated images when it is imported; a file cut off half-way must be refused, not
    # completed with grey, so it is turned off again before every picture.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(source, formats=_FORMATS) as image:
            frames = _check_size(image, max_pixels)
            yield image, _target(image, frames)
    except Image.DecompressionBombError:  # Pillow's own check, at twice its limit
        raise Refused(Refusal.too_many_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise Refused(Refusal.undecodable) from None


def inspect_image(path: Path, max_pixels: int = MAX_PIXELS) -> str:
    """What the picture in *path* will be once cleaned (its media type), from what can be
    checked without decoding it: its header, its size, and that the file is whole. Raises
    Refused."""
    with _opened(path, max_pixels) as (image, media):
        image_format = image.format
    if not _whole(path, image_format):
        raise Refused(Refusal.undecodable)
    return media


def clean_image(source: Path | IO[bytes], max_pixels: int = MAX_PIXELS) -> tuple[bytes, str]:
    """The picture in *source* as a new JPEG, PNG or GIF holding only its pixels, and its
    media type (the one ``inspect_image`` said). Raises Refused."""
    with _opened(source, max_pixels) as (image, media):
        if media != GIF:
            _decode_smaller(image)
            # In place: a copy would hold the photo's pixels twice.
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
        out = io.BytesIO()
        _save(image, out, media)
        return out.getvalue(), media


_SCAN_BYTES = 1024 * 1024


def _whole(path: Path, image_format: str | None) -> bool:
    """Whether a JPEG, PNG or WebP file reaches the end its format marks; a file cut off
    on the way (a dropped connection, a partial copy) does not. Other formats are only
    found out when decoded."""
    with path.open("rb") as file:
        if image_format == "JPEG":
            return _jpeg_ends(file)
        if image_format == "PNG":
            return _png_ends(file)
        if image_format == "WEBP":
            file.seek(4)
            riff_size = int.from_bytes(file.read(4), "little")
            return path.stat().st_size >= riff_size + 8
    return True


def _jpeg_ends(file: IO[bytes]) -> bool:
    """An end-of-image marker after the main image's first scan. Segments before it (an
    EXIF thumbnail, with its own end marker, among them) are skipped by their lengths;
    inside a scan a 0xFF byte is always followed by 0x00 or a restart marker, so the first
    0xFF 0xD9 there ends the image. Bytes after it (a phone's trailer) do not matter."""
    file.seek(2)
    while True:
        marker = file.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return False
        if marker[1] == 0xFF:  # fill byte before a marker
            file.seek(-1, io.SEEK_CUR)
            continue
        length = file.read(2)
        if len(length) < 2:
            return False
        (size,) = struct.unpack(">H", length)
        file.seek(size - 2, io.SEEK_CUR)
        if marker[1] == 0xDA:  # start of scan: the image data follows
            break
    split = False  # the chunk before ended in 0xFF: a marker may span the two
    while chunk := file.read(_SCAN_BYTES):
        if b"\xff\xd9" in chunk or (split and chunk[0] == 0xD9):
            return True
        split = chunk[-1] == 0xFF
    return False


def _png_ends(file: IO[bytes]) -> bool:
    """Chunks walked by their lengths, without reading their data, up to IEND."""
    file.seek(8)
    while len(header := file.read(8)) == 8:
        (length,) = struct.unpack(">I", header[:4])
        if header[4:] == b"IEND":
            return True
        file.seek(length + 4, io.SEEK_CUR)  # the data and its checksum
    return False


def video_tool() -> str | None:
    return shutil.which("ffmpeg")


@contextmanager
def clean_video(path: Path) -> Iterator[IO[bytes]]:
    """The video in *path* copied by ffmpeg into a fragmented MP4 (written as it is read,
    so it never waits whole on disk) with its video and audio streams only and no metadata.
    Read the stream to its end within the block; Refused when ffmpeg fails or is absent."""
    tool = video_tool()
    if tool is None:
        raise Refused(Refusal.no_video_tool)
    # -map 0:V: video streams but not cover pictures; 0:a?: audio if any. Subtitles, data
    # streams (a phone's GPS track), chapters, global and per-stream metadata are dropped;
    # bitexact keeps ffmpeg from writing its own name and version.
    command = [
        tool, "-nostdin", "-v", "error", "-i", str(path),
        "-map", "0:V", "-map", "0:a?", "-c", "copy",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-movflags", "frag_keyframe+empty_moov+default_base_moof",
        "-f", "mp4", "pipe:1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        yield process.stdout
        process.stdout.read()
        if process.wait(timeout=VIDEO_SECONDS) != 0:
            raise Refused(Refusal.undecodable)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def check_kind(head: bytes, size: int) -> Kind:
    if size == 0:
        raise Refused(Refusal.empty)
    kind = sniff(head)
    if kind is None:
        raise Refused(Refusal.unknown_type)
    return kind

"""Cleaning pictures: large JPEGs are kept at a screen's size, everything else as it came."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from form_service import file_cleaning
from form_service.file_cleaning import KEPT_LONG_SIDE, Refusal, Refused, clean_image, inspect_image

from .sample_files import gps_photo


def _stored(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return path


def _encoded(size: tuple[int, int], kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize(
    ("size", "kind", "kept"),
    [
        ((4032, 3024), "JPEG", (2016, 1512)),  # a 12-megapixel phone photo
        ((3024, 4032), "JPEG", (1512, 2016)),
        ((8064, 6048), "JPEG", (2016, 1512)),  # scaled by 4: still long enough
        ((2 * KEPT_LONG_SIDE - 1, 900), "JPEG", (2 * KEPT_LONG_SIDE - 1, 900)),
        ((4032, 3024), "PNG", (4032, 3024)),  # a screenshot keeps every pixel
    ],
)
def test_large_jpegs_are_kept_at_a_screens_size(
    tmp_path: Path, size: tuple[int, int], kind: str, kept: tuple[int, int]
) -> None:
    data, _ = clean_image(_stored(tmp_path, _encoded(size, kind)))
    assert Image.open(io.BytesIO(data)).size == kept


def test_a_large_photo_is_turned_upright_after_scaling(tmp_path: Path) -> None:
    # The sample's orientation tag turns it a quarter: 4000 x 3000 comes out standing.
    data, media = clean_image(_stored(tmp_path, gps_photo((4000, 3000))))
    assert media == "image/jpeg"
    assert Image.open(io.BytesIO(data)).size == (1500, 2000)


def _image(mode: str, kind: str, frames: int = 1) -> bytes:
    out = io.BytesIO()
    images = [Image.new(mode, (40, 30), n * 40) for n in range(frames)]
    images[0].save(out, kind, save_all=frames > 1, append_images=images[1:])
    return out.getvalue()


@pytest.mark.parametrize(
    ("mode", "kind", "frames", "media"),
    [
        ("RGB", "JPEG", 1, "image/jpeg"),
        ("L", "JPEG", 1, "image/jpeg"),
        ("CMYK", "JPEG", 1, "image/jpeg"),
        ("RGB", "PNG", 1, "image/jpeg"),
        ("RGBA", "PNG", 1, "image/png"),
        ("P", "PNG", 1, "image/png"),
        ("1", "PNG", 1, "image/png"),
        ("I;16", "PNG", 1, "image/png"),
        ("P", "GIF", 1, "image/png"),
        ("RGB", "GIF", 3, "image/gif"),
        ("RGB", "WEBP", 1, "image/jpeg"),
        ("RGBA", "WEBP", 1, "image/png"),
    ],
)
def test_what_a_picture_becomes_is_known_before_it_is_decoded(
    tmp_path: Path, mode: str, kind: str, frames: int, media: str
) -> None:
    """The report's partners are told a photo's type at once, before it is cleaned: the
    header's promise and the cleaned file must agree."""
    data = _image(mode, kind, frames=frames)
    path = _stored(tmp_path, data)
    assert inspect_image(path) == media
    cleaned, written = clean_image(io.BytesIO(data))
    assert written == media
    assert Image.open(io.BytesIO(cleaned)).get_format_mimetype() == media


def test_a_file_cut_short_is_refused_before_the_receipt(tmp_path: Path) -> None:
    for whole in (gps_photo(), _image("RGBA", "PNG"), _image("RGB", "WEBP")):
        assert inspect_image(_stored(tmp_path, whole))
        with pytest.raises(Refused) as refused:
            inspect_image(_stored(tmp_path, whole[: len(whole) * 3 // 4]))
        assert refused.value.reason is Refusal.undecodable


def test_a_jpeg_end_marker_split_between_two_reads_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan is read in pieces: with pieces of one byte, every marker is split."""
    monkeypatch.setattr(file_cleaning, "_SCAN_BYTES", 1)
    photo = gps_photo()
    assert inspect_image(_stored(tmp_path, photo)) == "image/jpeg"
    with pytest.raises(Refused):
        inspect_image(_stored(tmp_path, photo[:-1]))


def test_a_phone_trailer_after_the_jpeg_is_no_cause_to_refuse(tmp_path: Path) -> None:
    """Bytes after the end marker (a phone's trailer, a motion photo's video) do not make
    a photo refused; a thumbnail's own end marker, in a segment before the image, does not
    make a photo cut short pass."""
    photo = gps_photo()
    assert inspect_image(_stored(tmp_path, photo + b"SEFH\x00\x01trailer")) == "image/jpeg"
    thumbnail = _image("RGB", "JPEG")
    segment = b"\xff\xe2" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    with_thumbnail = photo[:2] + segment + photo[2:]
    assert inspect_image(_stored(tmp_path, with_thumbnail)) == "image/jpeg"
    scan = with_thumbnail.index(b"\xff\xda", 2 + len(segment))
    with pytest.raises(Refused):
        inspect_image(_stored(tmp_path, with_thumbnail[: scan + 200]))

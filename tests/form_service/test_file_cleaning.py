"""Cleaning pictures: large JPEGs are kept at a screen's size, everything else as it came."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from form_service.file_cleaning import KEPT_LONG_SIDE, clean_image

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

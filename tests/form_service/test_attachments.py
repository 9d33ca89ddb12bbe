"""Files attached to a report: received as they stream, typed by content, cleaned of every
identifying tag, encrypted at rest, held under the form token, listed on the receipt."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
import pytest
from PIL import Image
from starlette.testclient import TestClient

from form_service.settings import Settings

from .conftest import code_of, rows, start_client, token_of
from .sample_files import TAGS, gps_photo, screenshot, tagged_video
from .samples import VALID_FORM

FileSpec = tuple[str, bytes, str]


def send(
    client: TestClient,
    files: list[FileSpec],
    path: str = "/report",
    token: str | None = None,
    **fields: str,
) -> Any:
    """Send the valid sample report with *files* (name, bytes, claimed type) as the form
    does: multipart, the file field after the text."""
    token = token or token_of(client.get(path).text)
    data = {"token": token, **VALID_FORM, **fields}
    parts = [("files", spec) for spec in files]
    return client.post(path, data={k: v for k, v in data.items() if v}, files=parts)


def stored_bytes(settings: Settings) -> bytes:
    """Every byte the database holds (files, WAL and all)."""
    data = b""
    for path in sorted(settings.data_dir.rglob("*")):
        if path.is_file():
            data += path.read_bytes()
    return data


def archive_files(settings: Settings, identity: Any) -> list[tuple[str, bytes]]:
    """Each stored file's media type and its archive copy, opened with the archive key."""
    found = []
    for file_id, media in rows(
        settings, "SELECT id, media_type FROM attachments ORDER BY position"
    ):
        pieces = rows(
            settings,
            "SELECT data FROM attachment_pieces WHERE attachment_id = ? AND copy = 'archive'"
            " ORDER BY n",
            file_id,
        )
        found.append((media, pyrage.decrypt(b"".join(p for (p,) in pieces), [identity])))
    return found


def leaked(data: bytes) -> list[str]:
    return [name for name, value in TAGS.items() if value.encode() in data]


def test_a_photo_and_a_screenshot_are_kept_without_their_tags(
    client: TestClient, settings: Settings, archive_identity: Any
) -> None:
    photo, shot = gps_photo(), screenshot()
    assert set(leaked(photo + shot)) >= {"make", "model", "artist", "serial", "datum", "xmp"}
    receipt = send(client, [("IMG_0001.jpg", photo, "image/jpeg"), ("shot.png", shot, "image/png")])
    assert receipt.status_code == 200, receipt.text
    code_of(receipt.text)
    assert "Files received with your report: photo 1, photo 2." in receipt.text
    kept = archive_files(settings, archive_identity)
    assert [media for media, _ in kept] == ["image/jpeg", "image/png"]
    for _, data in kept:
        assert leaked(data) == []
        image = Image.open(io.BytesIO(data))
        assert not image.getexif() and "xmp" not in image.info and "comment" not in image.info
    # The orientation was applied: the blue half that was on the left is now on top.
    upright = Image.open(io.BytesIO(kept[0][1])).convert("RGB")
    assert upright.size == (80, 120)
    assert upright.getpixel((40, 10))[2] > 150 and upright.getpixel((40, 110))[0] > 150
    # Neither the database nor anything else in the data dir holds a tag or a file name.
    everything = stored_bytes(settings)
    assert leaked(everything) == [] and b"IMG_0001" not in everything
    assert list((settings.data_dir / "uploads").iterdir()) == []


"""Bad files and bad multipart bodies: each gets a precise, localized answer with the
tipster's text kept, never a 500, and leaves no plaintext behind."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image, ImageFile
from starlette.testclient import TestClient

from form_service.app import create_app
from form_service.http_limits import DeadlineH11Protocol
from form_service.settings import Settings
from tests.conftest import free_port

from .conftest import rows, start_client, token_of
from .sample_files import gps_photo, probe_streams, tagged_video
from .samples import VALID_FORM
from .test_attachments import send

KIB = 1024
IMAGE_LIMIT = 200 * KIB
VIDEO_LIMIT = 400 * KIB
REPORT_LIMIT = 500 * KIB


@pytest.fixture
def small(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings]]:
    """A service with small file limits, so that files over them stay small."""
    settings = make_settings(
        max_image_bytes=IMAGE_LIMIT,
        max_video_bytes=VIDEO_LIMIT,
        max_report_files_bytes=REPORT_LIMIT,
    )
    with start_client(settings) as client:
        yield client, settings


def refused(answer: Any, settings: Settings, message: str, status: int = 422) -> None:
    """The form again with *message*, the text kept, nothing stored, nothing left on disk."""
    assert answer.status_code == status, answer.text[:2000]
    assert message in answer.text
    assert VALID_FORM["description"] in answer.text and VALID_FORM["people"] in answer.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(0,)]
    uploads = settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def http_get(address: tuple[str, int], path: str) -> str:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
        page = b""
        while b"</html>" not in page:
            page += sock.recv(65536)
    return page.decode()


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[tuple[str, int]]:
    """The service under a real uvicorn (with the service's own protocol and limits), in a
    thread: a client can stop sending, or leave, mid-body."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=DeadlineH11Protocol,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield ("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture
def live_service(settings: Settings) -> Iterator[tuple[tuple[str, int], Path]]:
    with serving(settings) as address:
        yield address, settings.data_dir


@pytest.fixture
def live_small(
    make_settings: Callable[..., Settings],
) -> Iterator[tuple[tuple[str, int], Settings]]:
    settings = make_settings(
        max_image_bytes=IMAGE_LIMIT,
        max_video_bytes=VIDEO_LIMIT,
        max_report_files_bytes=REPORT_LIMIT,
    )
    with serving(settings) as address:
        yield address, settings


def padded_jpeg(size: int) -> bytes:
    """A valid JPEG of exactly *size* bytes (noise, padded after the end marker)."""
    image = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
    out = io.BytesIO()
    image.save(out, "JPEG")
    data = out.getvalue()
    assert len(data) <= size
    return data + b"\0" * (size - len(data))


def test_an_empty_file(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    refused(send(client, [("a.jpg", b"", "image/jpeg")]), settings, "File 1 is empty.")


def test_a_photo_just_over_its_limit(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    assert send(client, [("a.jpg", padded_jpeg(IMAGE_LIMIT), "image/jpeg")]).status_code == 200
    answer = send(client, [("a.jpg", padded_jpeg(IMAGE_LIMIT + 1), "image/jpeg")])
    refused_text = "File 1 is too large: a photo can be 0.2 MB, a video 0.4 MB."
    assert answer.status_code == 422 and refused_text in answer.text
    assert VALID_FORM["description"] in answer.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(1,)]


def test_a_video_just_over_its_limit(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    video = b"\0\0\0\x18ftypisom" + b"\0" * (VIDEO_LIMIT - 11)
    refused(send(client, [("v.mp4", video, "video/mp4")]), settings, "File 1 is too large")


def test_files_just_over_the_report_limit(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    photo = padded_jpeg(IMAGE_LIMIT)
    files = [(f"{n}.jpg", photo, "image/jpeg") for n in range(3)]  # 600 KiB > 500 KiB
    answer = send(client, files)
    assert answer.status_code == 422
    assert "File 3 was not kept: the files of one report can be 0.5 MB in all." in answer.text
    assert "We kept the 2 files you sent (photo 1, photo 2)" in answer.text
    assert rows(settings, "SELECT count(*) FROM attachments") == [(2,)]


def test_a_body_far_over_the_limit_gets_413_early_with_the_text(
    live_small: tuple[tuple[str, int], Settings],
) -> None:
    address, settings = live_small
    token = token_of(http_get(address, "/report"))
    text = form_body_with(token, [])[: -len(b"--b0undary--\r\n")]
    start_file = (
        b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"'
        b"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    declared = 50 * REPORT_LIMIT
    head = (
        b"POST /report HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: multipart/form-data; boundary=b0undary\r\n"
        b"Content-Length: %d\r\n\r\n" % declared
    )
    with socket.create_connection(address, timeout=60) as sock:
        # The text, then more file bytes than the limit (text allowance and files), and
        # far fewer than the body declared.
        over = settings.max_body_bytes + 2 * REPORT_LIMIT
        sock.sendall(head + text + start_file + b"\xff" * over)
        answer = b""
        while b"</html>" not in answer:  # the answer comes without the rest of the body
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    page = answer.decode("utf-8", errors="replace")
    assert page.startswith("HTTP/1.1 413"), page[:300]
    assert "Your files were too large to send" in page
    assert VALID_FORM["description"] in page and VALID_FORM["people"] in page
    assert rows(settings, "SELECT count(*) FROM reports") == [(0,)]
    assert list((settings.data_dir / "uploads").iterdir()) == []


def test_a_jpeg_named_mp4_is_a_photo(small: tuple[TestClient, Settings]) -> None:
    client, _ = small
    answer = send(client, [("clip.mp4", gps_photo(), "video/mp4")])
    assert answer.status_code == 200 and "photo 1" in answer.text


def test_an_executable_named_jpg(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    program = b"\x7fELF\x02\x01\x01\0" + b"\0" * 200
    refused(
        send(client, [("photo.jpg", program, "image/jpeg")]),
        settings,
        "File 1 is not a photo or video we can take.",
    )


def test_svg_and_html_named_as_images(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<!doctype html><script>alert(1)</script>"
    answer = send(client, [("a.png", svg, "image/png"), ("b.jpg", html, "image/jpeg")])
    refused(answer, settings, "File 1 is not a photo or video we can take.")
    assert "File 2 is not a photo or video we can take." in answer.text
    assert "<script>alert(1)" not in answer.text


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares *width* × *height* pixels (and holds almost none)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 100)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_a_png_declaring_100000_by_100000_pixels(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    bomb = png_declaring(100_000, 100_000)
    refused(
        send(client, [("bomb.png", bomb, "image/png")]),
        settings,
        "File 1 is a picture too large to open.",
    )


def test_a_truncated_jpeg(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    # The service imports WeasyPrint (staff PDFs), which makes Pillow lenient with truncated
    # images at import: the refusal must hold all the same, whatever ran before.
    import weasyprint  # noqa: F401

    ImageFile.LOAD_TRUNCATED_IMAGES = True
    whole = gps_photo(size=(400, 300))
    refused(
        send(client, [("cut.jpg", whole[: len(whole) // 2], "image/jpeg")]),
        settings,
        "File 1 could not be opened: it may be damaged or only partly sent.",
    )


def test_a_gif_of_5000_frames(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    frames = [Image.new("L", (2, 2), (n * 37) % 256) for n in range(5000)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    refused(
        send(client, [("many.gif", out.getvalue(), "image/gif")]),
        settings,
        "File 1 has too many frames.",
    )


def test_a_video_with_subtitles_and_a_data_stream_keeps_only_video_and_audio(
    client: TestClient, settings: Settings, archive_identity: Any, tmp_path: Path
) -> None:
    import pyrage

    video = tagged_video(tmp_path)
    assert sorted(probe_streams(tmp_path / "tagged.mp4")) == ["audio", "data", "subtitle", "video"]
    answer = send(client, [("clip.mov", video, "video/quicktime")])
    assert answer.status_code == 200, answer.text
    assert "Files received with your report: video 1." in answer.text
    (file_id,) = rows(settings, "SELECT id FROM attachments")[0]
    pieces = rows(
        settings,
        "SELECT data FROM attachment_pieces WHERE attachment_id = ? AND copy = 'archive'"
        " ORDER BY n",
        file_id,
    )
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(pyrage.decrypt(b"".join(p for (p,) in pieces), [archive_identity]))
    assert sorted(probe_streams(kept)) == ["audio", "video"]


# --- the multipart body itself ---------------------------------------------------------


def raw_post(client: TestClient, body: bytes, boundary: str | None = "b0undary") -> Any:
    media = "multipart/form-data" + (f"; boundary={boundary}" if boundary else "")
    return client.post("/report", content=body, headers={"content-type": media})


def form_body(
    client: TestClient, extra: Sequence[tuple[str, str, bytes]] = (), **fields: str
) -> bytes:
    """The valid form as multipart with boundary b0undary; *extra*: (name, filename, data)
    parts after the text."""
    return form_body_with(token_of(client.get("/report").text), extra, **fields)


def form_body_with(
    token: str, extra: Sequence[tuple[str, str, bytes]] = (), **fields: str
) -> bytes:
    parts = []
    for name, value in {"token": token, **VALID_FORM, **fields}.items():
        parts.append(
            b'--b0undary\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
            % (name.encode(), value.encode())
        )
    for name, filename, data in extra:
        parts.append(
            b'--b0undary\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n%s\r\n" % (name.encode(), filename.encode(), data)
        )
    return b"".join(parts) + b"--b0undary--\r\n"


def test_a_multipart_body_without_its_boundary(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    answer = raw_post(client, form_body(client), boundary=None)
    assert answer.status_code == 400
    assert "Some of the form could not be read." in answer.text
    assert rows(settings, "SELECT count(*) FROM reports") == [(0,)]


def test_a_duplicate_field(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    again = b'--b0undary\r\nContent-Disposition: form-data; name="area"\r\n\r\nsouth\r\n'
    body = form_body(client).replace(b"--b0undary--", again + b"--b0undary--")
    refused(raw_post(client, body), settings, "Some of the form could not be read.", 400)


def test_a_file_field_of_10000_parts(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    extra = [("files", f"{n}.jpg", b"x") for n in range(10_000)]
    refused(
        raw_post(client, form_body(client, extra)),
        settings,
        "Some of the form could not be read.",
        400,
    )


@pytest.mark.parametrize(
    "filename",
    ["../../../etc/passwd.jpg", "a\0b.jpg", "x" * 10_000 + ".jpg"],
    ids=["dots", "nul", "10kb"],
)
def test_hostile_file_names(small: tuple[TestClient, Settings], filename: str) -> None:
    client, settings = small
    body = form_body(client, [("files", filename, gps_photo())])
    answer = raw_post(client, body)
    if len(filename) > 1000:  # past python-multipart's header limit: unreadable
        refused(answer, settings, "Some of the form could not be read.", 400)
        return
    assert answer.status_code == 200, answer.text[:1000]
    assert "photo 1" in answer.text
    everything = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert b"passwd" not in everything and b"a\0b" not in everything
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert not (settings.data_dir.parent / "etc").exists()


def test_an_upload_interrupted_half_way_leaves_nothing(
    live_service: tuple[tuple[str, int], Path],
) -> None:
    (host, port), data_dir = live_service
    uploads = data_dir / "uploads"
    token = token_of(http_get((host, port), "/report"))
    head = (
        b'--b0undary\r\nContent-Disposition: form-data; name="token"\r\n\r\n'
        + token.encode()
        + b'\r\n--b0undary\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"'
        b"\r\nContent-Type: image/jpeg\r\n\r\n" + gps_photo() + b"\xff" * 100_000
    )
    request = (
        b"POST /report HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: multipart/form-data; boundary=b0undary\r\n"
        b"Content-Length: 2000000\r\n\r\n" + head
    )
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + 30
        while not (uploads.exists() and any(uploads.iterdir())):  # it is being written
            assert time.monotonic() < deadline, "the upload never reached the disk"
            time.sleep(0.05)
    deadline = time.monotonic() + 30
    while any(uploads.iterdir()):  # the client is gone: the file goes
        assert time.monotonic() < deadline, "the half upload was left on disk"
        time.sleep(0.05)


def test_heic_and_webp_photos_are_taken_and_cleaned(
    small: tuple[TestClient, Settings], archive_identity: Any
) -> None:
    import pyrage
    from pillow_heif import register_heif_opener

    from .sample_files import photo_exif

    register_heif_opener()
    client, settings = small
    image = Image.new("RGB", (64, 48), (10, 200, 10))
    heic, webp = io.BytesIO(), io.BytesIO()
    image.save(heic, "HEIF", exif=photo_exif(), quality=80)
    image.save(webp, "WEBP", exif=photo_exif())
    assert b"TipsterPhoneMakerZX" in heic.getvalue() + webp.getvalue()
    answer = send(
        client,
        [("IMG_1.HEIC", heic.getvalue(), "image/heic"), ("a.webp", webp.getvalue(), "image/webp")],
    )
    assert answer.status_code == 200, answer.text[:2000]
    assert "Files received with your report: photo 1, photo 2." in answer.text
    # A WebP is turned as its EXIF orientation says; HEIF has its own rotation, which
    # pillow-heif applies (and its EXIF orientation is not read again).
    upright = iter([(64, 48), (48, 64)])
    found = rows(settings, "SELECT id, media_type FROM attachments ORDER BY position")
    for file_id, media in found:
        pieces = rows(
            settings,
            "SELECT data FROM attachment_pieces WHERE attachment_id = ? AND copy = 'archive'"
            " ORDER BY n",
            file_id,
        )
        data = pyrage.decrypt(b"".join(p for (p,) in pieces), [archive_identity])
        assert media == "image/jpeg" and b"TipsterPhoneMakerZX" not in data
        assert Image.open(io.BytesIO(data)).size == next(upright)


def test_an_animated_gif_keeps_its_frames_and_loses_its_comment(
    small: tuple[TestClient, Settings], archive_identity: Any
) -> None:
    import pyrage

    client, settings = small
    frames = [Image.new("L", (20, 20), (n * 40) % 256) for n in range(5)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"Jane Tipster")
    assert send(client, [("a.gif", out.getvalue(), "image/gif")]).status_code == 200
    pieces = rows(settings, "SELECT data FROM attachment_pieces WHERE copy = 'archive' ORDER BY n")
    data = pyrage.decrypt(b"".join(p for (p,) in pieces), [archive_identity])
    assert Image.open(io.BytesIO(data)).n_frames == 5 and b"Jane Tipster" not in data


def test_without_ffmpeg_videos_are_refused_and_photos_still_taken(
    small: tuple[TestClient, Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client, settings = small
    video = tagged_video(tmp_path, subtitles=False)  # made while ffmpeg is still found
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    answer = send(client, [("a.jpg", gps_photo(), "image/jpeg"), ("v.mp4", video, "video/mp4")])
    assert answer.status_code == 422
    assert "File 2 is a video, and this site cannot take videos right now." in answer.text
    assert "We kept the file you sent (photo 1)" in answer.text
    assert rows(settings, "SELECT kind FROM attachments") == [("image",)]

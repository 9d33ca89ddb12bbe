"""Files a tipster might attach, made in the test with Pillow and ffmpeg, carrying every
kind of identifying metadata a phone or an editor writes: what must not survive."""

from __future__ import annotations

import io
import shutil
import subprocess
import zlib
from pathlib import Path

from PIL import Image, PngImagePlugin

# Values written into the files' metadata; none may appear in anything stored or delivered.
TAGS = {
    "make": "TipsterPhoneMakerZX",
    "model": "ModelQ7-5511",
    "artist": "Jane Q. Tipster",
    "serial": "SN-8842-1177-XY",
    "software": "SnapEditPro 9.9.1",
    "taken": "2019:07:04 13:37:42",
    "datum": "TIPSTERDATUMWGS",
    "comment": "taken at 12 Elm Street by Jane",
    "xmp": "xmp-creator-jane-tipster",
    "png_author": "PNG author Jane Tipster",
    "video_title": "VideoTitleJaneTipster",
    "video_location": "+41.8722-087.6245/",
    "video_artist": "VideoArtistJane",
    "video_handler": "HandlerNameJanePhone",
    "subtitle": "SubtitleLineJaneTipster",
}
GPS_LATITUDE = (41.0, 52.0, 20.5)

_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
    f"<dc:creator>{TAGS['xmp']}</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
)


def photo_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = TAGS["make"]
    exif[0x0110] = TAGS["model"]
    exif[0x013B] = TAGS["artist"]
    exif[0x0131] = TAGS["software"]
    exif[0x0132] = TAGS["taken"]
    exif[0x0112] = 6  # orientation: turn 90° clockwise to show
    sub = exif.get_ifd(0x8769)
    sub[0xA431] = TAGS["serial"]
    sub[0x9003] = TAGS["taken"]
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "W"
    gps[4] = (87.0, 37.0, 44.2)
    gps[0x12] = TAGS["datum"]
    return exif


def gps_photo(size: tuple[int, int] = (120, 80)) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS, device, serial and author, XMP, a
    comment, and an orientation that turns it upright."""
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, size[0] // 2, size[1]))  # a blue left half
    out = io.BytesIO()
    image.save(
        out, "JPEG", exif=photo_exif(), xmp=_XMP.encode(), comment=TAGS["comment"], quality=90
    )
    return out.getvalue()


def screenshot() -> bytes:
    """A PNG screenshot with text chunks (author, comment) and EXIF."""
    image = Image.new("RGBA", (90, 160), (250, 250, 250, 255))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", TAGS["png_author"])
    info.add_itxt("Comment", TAGS["comment"])
    info.add_text("XML:com.adobe.xmp", _XMP)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info, exif=photo_exif())
    return out.getvalue()


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def tagged_video(folder: Path, seconds: float = 1.0, subtitles: bool = True) -> bytes:
    """An MP4 with a video and an audio stream, a subtitle track and a data (timecode)
    track, and metadata: title, location, artist, a handler name."""
    tool = ffmpeg()
    assert tool, "ffmpeg is needed to make the test videos"
    srt = folder / "lines.srt"
    srt.write_text(f"1\n00:00:00,000 --> 00:00:01,000\n{TAGS['subtitle']}\n", encoding="utf-8")
    out = folder / "tagged.mp4"
    command = [
        tool, "-y", "-v", "error",
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=96x64:rate=10",
        "-f", "lavfi", "-i", f"sine=duration={seconds}",
    ]  # fmt: skip
    if subtitles:
        command += ["-i", str(srt), "-map", "0", "-map", "1", "-map", "2", "-c:s", "mov_text"]
    command += [
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
        "-timecode", "01:00:00:00",
        "-metadata", f"title={TAGS['video_title']}",
        "-metadata", f"location={TAGS['video_location']}",
        "-metadata", f"artist={TAGS['video_artist']}",
        "-metadata:s:v", f"handler_name={TAGS['video_handler']}",
        str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return out.read_bytes()


def probe_streams(path: Path) -> list[str]:
    """The codec types of the streams in a video, by ffprobe."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
         str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.split()


def broken_png() -> bytes:
    """A PNG whole to its end (its chunks walk to IEND) whose pixel data does not inflate:
    it passes every check made before the receipt and fails to decode after it."""
    data = bytearray(screenshot())
    start = data.index(b"IDAT") + 4
    data[start : start + 16] = b"\xff" * 16
    # Checksum made right again: the broken part is the compressed stream itself.
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    crc = zlib.crc32(bytes(data[start - 4 : start + length]))
    data[start + length : start + length + 4] = crc.to_bytes(4, "big")
    return bytes(data)

"""A report's photos and videos on its case page: shown to the intake team (images inline,
videos to download), opened with the team key, on the audit trail; refused to others."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from PIL import Image

from form_service.storage import open_store
from form_service.waiting_files import clean_all_waiting
from tests.form_service.conftest import start_client
from tests.form_service.sample_files import broken_png, gps_photo, tagged_video
from tests.form_service.staff.support import enrol, sign_in
from tests.form_service.staff.test_inbox import Desk, desk  # noqa: F401 (fixture)
from tests.form_service.test_attachments import leaked, send


def test_the_case_page_shows_photos_inline_and_offers_videos(
    desk: Desk,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    with start_client(desk.settings) as tipster:
        files = [
            ("a.jpg", gps_photo(), "image/jpeg"),
            ("b.mp4", tagged_video(tmp_path), "video/mp4"),
        ]
        assert send(tipster, files).status_code == 200
    (ref,) = desk.refs(desk.client.get("/staff/?view=open").text)
    page = desk.client.get(f"/staff/reports/{ref}").text
    images = re.findall(rf'<img src="(/staff/reports/{ref}/files/[0-9a-f]+)" alt="photo 1"', page)
    videos = re.findall(rf'<a href="(/staff/reports/{ref}/files/[0-9a-f]+)" download>', page)
    assert len(images) == 1 and len(videos) == 1 and "Download video 1" in page
    photo = desk.client.get(images[0])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "no-store"
    assert photo.headers["content-disposition"] == 'inline; filename="photo-1.jpg"'
    assert "default-src 'none'" in photo.headers["content-security-policy"]
    Image.open(io.BytesIO(photo.content)).load()
    assert leaked(photo.content) == []
    video = desk.client.get(videos[0])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.headers["content-disposition"] == 'attachment; filename="video-1.mp4"'
    assert leaked(video.content) == []
    # Another report's reference does not open this file; nor does anyone signed out.
    assert (
        desk.client.get(
            f"/staff/reports/R-00000000/files/{images[0].rsplit('/', 1)[1]}"
        ).status_code
        == 404
    )
    with start_client(desk.settings) as stranger:
        answer = stranger.get(images[0], follow_redirects=False)
        assert answer.status_code in (302, 303) and "image" not in answer.headers.get(
            "content-type", ""
        )


def test_a_partner_user_cannot_open_the_files(desk: Desk) -> None:  # noqa: F811 (the fixture)
    with start_client(desk.settings) as tipster:
        assert send(tipster, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    (ref,) = desk.refs(desk.client.get("/staff/?view=open").text)
    page = desk.client.get(f"/staff/reports/{ref}").text
    (url,) = re.findall(rf'<img src="(/staff/reports/{ref}/files/[0-9a-f]+)"', page)
    with start_client(desk.settings) as other:
        partner = enrol(
            other, desk.settings, desk.clock, "school@example.org", role="partner:harbor-schools"
        )
    with start_client(desk.settings) as other:
        sign_in(other, desk.clock, partner)
        answer = other.get(url)
        assert answer.status_code == 403 and "image" not in answer.headers["content-type"]


def test_a_photo_being_prepared_and_one_that_could_not_be_opened(
    desk: Desk,  # noqa: F811 (the fixture)
    left_waiting: None,
) -> None:
    with start_client(desk.settings) as tipster:
        files = [("a.jpg", gps_photo(), "image/jpeg"), ("b.png", broken_png(), "image/png")]
        assert send(tipster, files).status_code == 200
    (ref,) = desk.refs(desk.client.get("/staff/?view=open").text)
    ids = desk.database.rows("SELECT id FROM attachments ORDER BY position")
    photo, broken = (f"/staff/reports/{ref}/files/{i}" for (i,) in ids)
    page = desk.client.get(f"/staff/reports/{ref}").text
    assert page.count("This photo is still being prepared") == 2 and "<img" not in page
    assert desk.client.get(photo).status_code == 409

    async def sweep() -> int:
        store = open_store(desk.settings)
        await store.open()
        try:
            settings = desk.settings
            profile = settings.profile.profile
            return await clean_all_waiting(store, profile, settings.secret_keys, settings.data_dir)
        finally:
            await store.close()

    assert asyncio.run(sweep()) == 2
    page = desk.client.get(f"/staff/reports/{ref}").text
    assert f'<img src="{photo}" alt="photo 1"' in page
    assert "photo 2: This photo could not be opened" in page and "being prepared" not in page
    shown = desk.client.get(photo)
    assert shown.status_code == 200 and leaked(shown.content) == []
    Image.open(io.BytesIO(shown.content)).load()
    answer = desk.client.get(broken)
    assert answer.status_code == 410 and "image" not in answer.headers["content-type"]

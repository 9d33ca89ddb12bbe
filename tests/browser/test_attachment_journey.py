"""The done-when journey of attached files, in a real browser without JavaScript on a
phone-sized screen: a tipster attaches a phone photo carrying GPS, device and author tags
and a screenshot, sends the report, and the partner whose agreement allows attachments
receives both, decodable, with no tag of the originals left; the other partners do not;
no plaintext of either file remains on disk after the request."""

from __future__ import annotations

import io
import mailbox
import shutil
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser

from outreach.loader import DEMO_PROFILE
from tests.browser.conftest import Server, _serve
from tests.browser.support import (
    RECEIPT_CODE,
    Traffic,
    axe_violations,
    describe,
    overflow_problems,
    privacy_problems,
)
from tests.conftest import edit_yaml
from tests.form_service.sample_files import TAGS, gps_photo, screenshot

pytestmark = pytest.mark.browser

SHARES_FILES = "harbor-schools"
WHAT = "He posted this photo of the gym with a threat; the screenshot shows his message."


@pytest.fixture(scope="module")
def files_served(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo agency, with one partner's agreement allowing attachments and no rule
    held for review."""
    workdir = tmp_path_factory.mktemp("files")
    folder = workdir / "agency"
    shutil.copytree(Path(DEMO_PROFILE), folder)

    def change(data: dict[str, Any]) -> None:
        for partner in data["partners"]:
            if partner["id"] == SHARES_FILES:
                partner["agreement"]["attachments"] = True
        # Partners get the report at once, not after the intake team's review.
        for rule in data["routing"]["rules"]:
            rule["review"] = False

    edit_yaml(folder / "agency.yml", change)
    yield from _serve(workdir, folder)


def leaked(data: bytes) -> list[str]:
    return [name for name, value in TAGS.items() if value.encode() in data]


def messages(server: Server, folder: str, timeout: float = 120) -> list[EmailMessage]:
    """The messages in a partner's Maildir, waiting for the first to arrive."""
    path = server.data_dir / "maildir" / folder
    deadline = time.monotonic() + timeout
    while True:
        if path.is_dir():
            found = [bytes(m) for m in mailbox.Maildir(path, create=False)]
            if found:
                break
        assert time.monotonic() < deadline, f"nothing delivered to {folder}"
        time.sleep(0.2)
    parsed = [message_from_bytes(raw, policy=policy.default) for raw in found]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def test_a_photo_and_a_screenshot_reach_only_the_partner_allowed(
    browser: Browser, files_served: Server, tmp_path: Path
) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}, reduced_motion="reduce"
    )
    traffic = Traffic(files_served.base_url).watch(context)
    page = context.new_page()
    page.goto(files_served.url("/report"))
    limits = page.locator("#h-files").inner_text()
    assert "10 MB" in limits and "50 MB" in limits and "60 MB" in limits
    problems = axe_violations(page, False) + overflow_problems(page)
    assert problems == [], describe(problems)

    page.locator("#f-description").fill(WHAT)
    for radio in ("f-area-1", "f-setting-1", "f-concern-1", "f-danger_now-2"):
        page.locator(f"#{radio}").check()
    page.locator("#f-files").set_input_files(
        [
            {"name": "IMG_4031.JPG", "mimeType": "image/jpeg", "buffer": gps_photo()},
            {"name": "Screenshot 2026-12-05.png", "mimeType": "image/png", "buffer": screenshot()},
        ]
    )
    with page.expect_navigation() as navigation:
        page.locator("main form button[type=submit]").click()
    answer = navigation.value
    assert answer is not None and answer.status == 200, page.content()[:2000]
    code = page.locator("#receipt-code").get_attribute("value") or ""
    assert RECEIPT_CODE.match(code)
    assert "Files received with your report: photo 1, photo 2." in page.inner_text("main")
    problems = axe_violations(page, False) + overflow_problems(page)
    problems += privacy_problems(traffic, context)
    assert problems == [], describe(problems)
    context.close()

    # The partner whose agreement allows them: both files, decodable, no tag left.
    (mail,) = messages(files_served, SHARES_FILES)
    attached = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    assert sorted(attached) == ["photo-1.jpg", "photo-2.png"]
    for data in attached.values():
        Image.open(io.BytesIO(data)).load()
        assert leaked(data) == []
    assert leaked(mail.as_bytes()) == [] and b"IMG_4031" not in mail.as_bytes()
    # Another partner the report went to: no file, only their number.
    (other,) = messages(files_served, "sheriff-tau")
    assert list(other.iter_attachments()) == []
    assert "files (photos or videos) that this agreement does not share: 2" in (
        other.get_body(("plain",)).get_content()
    )
    # Nothing on disk holds a tag or a name of the originals; no upload file is left.
    uploads = files_served.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    everything = b"".join(p.read_bytes() for p in files_served.data_dir.rglob("*") if p.is_file())
    assert leaked(everything) == []
    assert b"IMG_4031" not in everything and b"Screenshot 2026" not in everything

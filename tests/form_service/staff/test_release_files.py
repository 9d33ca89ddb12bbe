"""A report held for review keeps its files' delivery copies until the intake team
releases it; the partners it is released to then get the files their agreement allows."""

from __future__ import annotations

import asyncio
import mailbox
import re
from collections.abc import Callable
from email import message_from_bytes, policy

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.worker import DeliveryWorker
from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.databases import Database
from tests.form_service.conftest import start_client
from tests.form_service.delivery.reports import FAST
from tests.form_service.sample_files import gps_photo
from tests.form_service.staff.support import CodeClock, csrf_of, enrol, sign_in
from tests.form_service.test_attachments import leaked, send


def _sharing_files(loaded: LoadedProfile, partner_id: str) -> LoadedProfile:
    partners = [
        p.model_copy(update={"agreement": p.agreement.model_copy(update={"attachments": True})})
        if p.id == partner_id
        else p
        for p in loaded.profile.partners
    ]
    profile = loaded.profile.model_copy(update={"partners": partners})
    return LoadedProfile(profile=profile, folder=loaded.folder, path=loaded.path)


def test_files_wait_for_review_and_go_with_the_release(
    database: Database,
    make_settings: Callable[..., Settings],
    reviewed_demo: LoadedProfile,
    code_clock: CodeClock,
) -> None:
    loaded = _sharing_files(reviewed_demo, "harbor-schools")
    settings = make_settings(database_url=database.url, profile=loaded)

    def deliver() -> None:
        async def run() -> None:
            store = await database.open_store()
            try:
                delivery = DeliverySettings(
                    profile=loaded.profile,
                    data_dir=settings.data_dir,
                    secret_keys=settings.secret_keys,
                )
                await DeliveryWorker(store, delivery, options=FAST).drain()
            finally:
                await store.close()

        asyncio.run(run())

    with start_client(settings) as setup:
        intake = enrol(setup, settings, code_clock, "intake@example.org")
        school = enrol(
            setup, settings, code_clock, "counselor@example.org", "partner:harbor-schools"
        )
        sheriff = enrol(setup, settings, code_clock, "deputy@example.org", "partner:sheriff-tau")
    with start_client(settings) as tipster:
        assert (
            send(tipster, [("a.jpg", gps_photo(), "image/jpeg")], danger_now="no").status_code
            == 200
        )
    deliver()  # the intake team's copy; the school and the sheriff wait for review
    copies = database.rows("SELECT copy, count(*) FROM attachment_pieces GROUP BY copy")
    assert dict(copies) == {"archive": 1, "delivery": 1}
    with start_client(settings) as desk:
        sign_in(desk, code_clock, intake)
        ref = re.findall(r'href="/staff/reports/(R-[0-9A-Z]+)"', desk.get("/staff/").text)[0]
        case = desk.get(f"/staff/reports/{ref}").text
        desk.post(
            f"/staff/reports/{ref}",
            data={"csrf": csrf_of(case), "action": "release", "share-harbor-schools": "1"},
        )
    deliver()
    box = mailbox.Maildir(settings.data_dir / "maildir" / "harbor-schools", create=False)
    (raw,) = [bytes(m) for m in box]
    mail = message_from_bytes(raw, policy=policy.default)
    names = [part.get_filename() for part in mail.iter_attachments()]  # type: ignore[attr-defined]
    assert names == ["photo-1.jpg"] and leaked(raw) == []
    # Everyone who will get it has it: the archive copy remains, and the school's users'.
    copies = database.rows("SELECT copy, count(*) FROM attachment_pieces GROUP BY copy")
    assert dict(copies) == {"archive": 1, "partner:harbor-schools": 1}
    # The school's users see the photo in their inbox; the sheriff's (withheld) cannot.
    with start_client(settings) as counselor:
        sign_in(counselor, code_clock, school)
        page = counselor.get(f"/staff/reports/{ref}").text
        (url,) = re.findall(
            rf'<img src="(/staff/reports/{ref}/files/[0-9a-f]+)" alt="photo 1"', page
        )
        photo = counselor.get(url)
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
        assert leaked(photo.content) == []
    with start_client(settings) as deputy:
        sign_in(deputy, code_clock, sheriff)
        refused = deputy.get(url)
        assert refused.status_code == 403 and "image" not in refused.headers["content-type"]

"""Attached files reach the partners whose agreement allows them, as files they can open,
with no tag of the originals left: by e-mail and Maildir as MIME attachments (age-encrypted
for a partner with a key), by webhook inside the signed body. Other partners are told only
that files exist, when they see the description. Once every delivery is done, the delivery
copies are gone from the database; only the archive copy (age) stays.

The report is sent through the real form (multipart) and delivered by the real worker to a
real SMTP server (aiosmtpd), an HTTP receiver and a Maildir, on both databases."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import mailbox
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pyrage
import pytest
from PIL import Image

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.worker import DeliveryWorker
from form_service.settings import Settings
from outreach.loader import LoadedProfile
from outreach.profile import Profile
from tests.databases import Database
from tests.form_service.conftest import start_client
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.reports import FAST
from tests.form_service.delivery.servers import HTTPReceiver, SMTPServer, ThrowawayCA
from tests.form_service.sample_files import gps_photo, screenshot
from tests.form_service.test_attachments import leaked, send

SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes!!!!!").decode()


def _partner(profile: Profile, partner_id: str, attachments: bool, delivery: dict[str, Any]) -> Any:
    data = profile.partner(partner_id).model_dump(mode="json")
    data["agreement"]["attachments"] = attachments
    data["delivery"] = delivery
    return data


def _profile(
    base: LoadedProfile, smtp: SMTPServer, hook: HTTPReceiver, intake_key: str, sheriff: bool
) -> LoadedProfile:
    profile = base.profile
    changed = {
        "intake-team": _partner(
            profile,
            "intake-team",
            False,
            {"channel": "maildir", "maildir": {"folder": "intake"}, "age_recipient": intake_key},
        ),
        "harbor-schools": _partner(profile, "harbor-schools", True, smtp_delivery(smtp)),
        "sheriff-tau": _partner(
            profile,
            "sheriff-tau",
            sheriff,
            {"channel": "webhook", "webhook": {"url": hook.url, "secret_env": "HOOK_SECRET"}},
        ),
    }
    data = profile.model_dump(mode="json")
    data["partners"] = [changed.get(p["id"], p) for p in data["partners"]]
    return LoadedProfile(profile=Profile.model_validate(data), folder=base.folder, path=base.path)


def _check_image(data: bytes, media: str) -> None:
    assert leaked(data) == []
    image = Image.open(io.BytesIO(data))
    image.load()  # decodable
    assert image.get_format_mimetype() == media and not image.getexif()


@pytest.mark.parametrize("sheriff_gets_files", [False, True], ids=["withheld", "webhook-files"])
def test_files_reach_the_partners_the_agreement_allows(
    database: Database,
    make_settings: Callable[..., Settings],
    keyed_demo: LoadedProfile,
    smtp_server: Callable[..., SMTPServer],
    http_receiver: HTTPReceiver,
    test_ca: ThrowawayCA,
    sheriff_gets_files: bool,
) -> None:
    smtp = smtp_server(starttls=True)
    intake = pyrage.x25519.Identity.generate()
    loaded = _profile(keyed_demo, smtp, http_receiver, str(intake.to_public()), sheriff_gets_files)
    settings = make_settings(profile=loaded, database_url=database.url)
    with start_client(settings) as client:
        files = [
            ("IMG_0001.jpg", gps_photo(), "image/jpeg"),
            ("shot.png", screenshot(), "image/png"),
        ]
        assert send(client, files).status_code == 200

    async def deliver() -> None:
        store = await database.open_store()
        try:
            delivery = DeliverySettings(
                profile=loaded.profile,
                data_dir=settings.data_dir,
                environ={"HOOK_SECRET": SECRET},
                tls_context=test_ca.client_context(),
                timeout=10,
                secret_keys=settings.secret_keys,
            )
            await DeliveryWorker(store, delivery, options=FAST).drain()
        finally:
            await store.close()

    asyncio.run(deliver())
    assert database.rows("SELECT status FROM outbox WHERE status != 'delivered'") == []

    # The schools (attachments: true, e-mail): both files, plain, decodable, no tag.
    (received,) = smtp.messages
    mail = received.message
    attached = [
        (p.get_filename(), p.get_content_type(), p.get_content()) for p in mail.iter_attachments()
    ]
    assert [(name, media) for name, media, _ in attached] == [
        ("photo-1.jpg", "image/jpeg"),
        ("photo-2.png", "image/png"),
    ]
    for _, media, data in attached:
        _check_image(data, media)
    assert "photo-1.jpg, photo-2.png" in mail.get_body(("plain",)).get_content()
    assert leaked(received.data) == [] and b"IMG_0001" not in received.data

    # The intake team (maildir, its own age key): both files, each sealed to its key.
    box = mailbox.Maildir(settings.data_dir / "maildir" / "intake", create=False)
    (raw,) = [bytes(m) for m in box]
    sealed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(sealed, EmailMessage)
    parts = {p.get_filename(): p.get_content() for p in sealed.iter_attachments()}
    assert set(parts) == {"report.txt.age", "photo-1.jpg.age", "photo-2.png.age"}
    _check_image(pyrage.decrypt(parts["photo-1.jpg.age"], [intake]), "image/jpeg")
    _check_image(pyrage.decrypt(parts["photo-2.png.age"], [intake]), "image/png")
    assert leaked(raw) == []

    # The sheriff (webhook): the files inside the signed body, or only their number.
    (request,) = http_receiver.requests
    body = json.loads(request.body)
    if sheriff_gets_files:
        shared = body["attachments"]
        assert [(f["kind"], f["number"], f["media_type"]) for f in shared] == [
            ("image", 1, "image/jpeg"),
            ("image", 2, "image/png"),
        ]
        for f in shared:
            _check_image(base64.b64decode(f["data_base64"]), f["media_type"])
    else:
        assert "attachments" not in body and body["files_withheld"] == 2
    assert leaked(request.body) == []

    # Delivered: the delivery copies are gone; the archive copies stay, and no tag anywhere.
    copies = database.rows("SELECT copy, count(*) FROM attachment_pieces GROUP BY copy")
    assert dict(copies) == {"archive": 2}
    assert leaked(database.raw()) == []

"""Rotating keys as guide/keys.md tells operators to: nothing open or stored is lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
import pytest

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from outreach.profile import Archive

from .conftest import code_of, rows, start_client, submit, token_of
from .samples import VALID_FORM


def status_of(settings: Settings, code: str) -> str:
    with start_client(settings) as client:
        return client.post("/status", data={"code": code}).text


def test_signing_key_rotation_keeps_open_forms_and_receipts(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    before = make_settings(data_dir=data_dir, secret_keys=("old-secret",))
    with start_client(before) as client:
        open_form = token_of(client.get("/report").text)  # a tipster starts typing
        old_code = code_of(submit(client).text)  # another one already has a receipt

    rotated = make_settings(data_dir=data_dir, secret_keys=("new-secret", "old-secret"))
    with start_client(rotated) as client:
        sent = client.post("/report", data={"token": open_form, **VALID_FORM})
        assert sent.status_code == 200, "a form opened before the rotation is accepted"
        kept_code = code_of(sent.text)
        new_form = token_of(client.get("/report").text)
    assert "<h2>Received</h2>" in status_of(rotated, old_code)
    assert "<h2>Received</h2>" in status_of(rotated, kept_code)

    # The first key signs: a service that knows only the old key refuses the new form.
    with start_client(before) as client:
        refused = client.post("/report", data={"token": new_form, **VALID_FORM})
        assert refused.status_code >= 400
    # Once the old key is dropped, what it signed is no longer accepted.
    dropped = make_settings(data_dir=data_dir, secret_keys=("new-secret",))
    assert "<h2>Received</h2>" not in status_of(dropped, old_code)
    assert len(rows(rotated, "SELECT report_ref FROM reports")) == 2


def _sealed_reports(settings: Settings) -> list[bytes]:
    return [bytes(row[0]) for row in rows(settings, "SELECT content_age FROM reports")]


def _opens(sealed: bytes, identity: Any) -> bool:
    try:
        content = json.loads(pyrage.decrypt(sealed, [identity]))
    except pyrage.DecryptError:
        return False
    return bool(content["description"] == VALID_FORM["description"])


@pytest.fixture
def with_archive(keyed_demo: LoadedProfile) -> Callable[..., LoadedProfile]:
    def make(*identities: Any) -> LoadedProfile:
        archive = Archive(age_recipients=[str(i.to_public()) for i in identities])
        profile = keyed_demo.profile.model_copy(update={"archive": archive})
        return LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)

    return make


def test_archive_key_rotation(
    make_settings: Callable[..., Settings], with_archive: Callable[..., LoadedProfile]
) -> None:
    old, new = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()

    def report_with(*identities: Any) -> bytes:
        settings = make_settings(profile=with_archive(*identities))
        with start_client(settings) as client:
            assert submit(client).status_code == 200
        [sealed] = _sealed_reports(settings)
        return sealed

    before = report_with(old)
    overlap = report_with(new, old)  # step 2: the new key first, the old one still listed
    after = report_with(new)  # step 4: the old key removed
    assert _opens(before, old) and not _opens(before, new)
    assert _opens(overlap, old) and _opens(overlap, new)
    assert _opens(after, new) and not _opens(after, old)

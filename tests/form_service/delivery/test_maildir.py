from __future__ import annotations

import asyncio
import email.utils
import json
import mailbox
import shutil
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from form_service.delivery import maildir
from form_service.delivery.channel import DeliverySettings
from form_service.delivery.payload import parse_payload
from outreach.loader import LoadedProfile
from tests.form_service.delivery.factory import payload


def _deliver(demo: LoadedProfile, data_dir: Path, data: dict[str, object]) -> None:
    settings = DeliverySettings(profile=demo.profile, data_dir=data_dir)
    poc = demo.profile.partner(str(data["partner_id"]))
    asyncio.run(maildir.send(parse_payload(json.dumps(data)), poc, settings))


def test_message_lands_in_the_partners_folder(demo: LoadedProfile, data_dir: Path) -> None:
    data = payload("harbor-schools", rule_id="schools-north-south")
    _deliver(demo, data_dir, data)
    box = mailbox.Maildir(data_dir / "maildir" / "harbor-schools", create=False)
    (key,) = box.keys()
    assert key == data["delivery_id"]
    mail = box[key]
    assert mail["Subject"] == "Someone may be in danger now: report R-7K3M9Q2X"
    assert list((data_dir / "maildir" / "harbor-schools" / "tmp").iterdir()) == []


def test_the_file_is_timed_to_the_minute(demo: LoadedProfile, data_dir: Path) -> None:
    data = payload("intake-team")
    _deliver(demo, data_dir, data)
    (new,) = (data_dir / "maildir" / "intake-team" / "new").iterdir()
    assert new.name == data["delivery_id"], "the name holds no time"
    assert new.stat().st_mtime % 60 == 0
    assert new.stat().st_atime % 60 == 0
    assert abs(new.stat().st_mtime - time.time()) <= 61
    mail = mailbox.Maildir(data_dir / "maildir" / "intake-team", create=False)[new.name]
    assert email.utils.parsedate_to_datetime(mail["Date"]).second == 0


def test_same_delivery_twice_is_one_message(demo: LoadedProfile, data_dir: Path) -> None:
    data = payload("intake-team")
    _deliver(demo, data_dir, data)
    _deliver(demo, data_dir, data)
    folder = data_dir / "maildir" / "intake-team"
    assert len(mailbox.Maildir(folder, create=False)) == 1
    # A message already read (moved to cur/ by a mail client) is found there too.
    (new,) = (folder / "new").iterdir()
    new.rename(folder / "cur" / f"{new.name}:2,S")
    _deliver(demo, data_dir, data)
    assert len(mailbox.Maildir(folder, create=False)) == 1


def test_other_deliveries_are_separate_messages(demo: LoadedProfile, data_dir: Path) -> None:
    _deliver(demo, data_dir, payload("intake-team"))
    _deliver(demo, data_dir, payload("intake-team"))
    assert len(mailbox.Maildir(data_dir / "maildir" / "intake-team", create=False)) == 2


def _small_mail() -> bytes:
    mail = EmailMessage()
    mail["Subject"] = "x"
    mail.set_content("y")
    return mail.as_bytes()


def test_store_keeps_one_copy_when_two_writers_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail = _small_mail()
    folder = tmp_path / "box"
    assert maildir.store(folder, "k1", mail) is True
    # The other writer's look-up ran before this one's file appeared: only link() can tell.
    monkeypatch.setattr(maildir, "already_there", lambda folder, key: False)
    assert maildir.store(folder, "k1", mail) is False
    assert [p.name for p in (folder / "new").iterdir()] == ["k1"]
    assert list((folder / "tmp").iterdir()) == []


def test_folders_are_made_again_after_they_were_removed(tmp_path: Path) -> None:
    mail = _small_mail()
    folder = tmp_path / "mail" / "box"
    assert maildir.store(folder, "k1", mail) is True
    # An operator clears the mail: the next message makes the folder again and lands.
    shutil.rmtree(tmp_path / "mail")
    assert maildir.store(folder, "k2", mail) is True
    assert [p.name for p in (folder / "new").iterdir()] == ["k2"]
    assert (folder / "cur").is_dir() and (folder / "tmp").is_dir()
    assert (folder.stat().st_mode & 0o777) == 0o700

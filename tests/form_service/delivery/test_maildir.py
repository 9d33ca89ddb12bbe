from __future__ import annotations

import asyncio
import json
import mailbox
import shutil
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


def test_folders_are_made_once_and_again_after_they_were_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail = _small_mail()
    folder = tmp_path / "mail" / "box"
    made: list[str] = []
    real_mkdir = Path.mkdir

    def counting(path: Path, *args: object, **kwargs: object) -> None:
        made.append(path.name)
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", counting)
    for key in ("k1", "k2", "k3"):
        assert maildir.store(folder, key, mail) is True
    assert made == ["mail", "box", "tmp", "new", "cur"]
    # An operator clears the mail: the next message makes the folder again and lands.
    shutil.rmtree(tmp_path / "mail")
    assert maildir.store(folder, "k4", mail) is True
    assert [p.name for p in (folder / "new").iterdir()] == ["k4"]
    assert (folder / "cur").is_dir() and (folder / "tmp").is_dir()
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_read_messages_are_listed_again_only_when_a_reader_moves_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Listing cur/ for every delivery made a busy folder slower with every message.
    mail = _small_mail()
    folder = tmp_path / "box"
    listings: list[str] = []
    real_listdir = maildir.os.listdir

    def counting(path: Path) -> list[str]:
        listings.append(Path(path).name)
        return real_listdir(path)

    monkeypatch.setattr(maildir.os, "listdir", counting)
    for key in ("k1", "k2", "k3", "k4"):
        assert maildir.store(folder, key, mail) is True
    assert listings == ["cur"]
    # A mail client reads k1: it moves to cur/, and storing k1 again adds no copy.
    (folder / "new" / "k1").rename(folder / "cur" / "k1:2,S")
    assert maildir.store(folder, "k1", mail) is False
    assert maildir.store(folder, "k5", mail) is True
    assert listings == ["cur", "cur"]
    assert sorted(p.name for p in (folder / "new").iterdir()) == ["k2", "k3", "k4", "k5"]

"""`outreach keygen`: an age key pair whose private half is only ever where the user says."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyrage
import pytest
from click.testing import CliRunner

from outreach.cli import main
from outreach.keys import read_identity_file
from outreach.profile import Archive


def keygen(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["keygen", *args])
    return result.exit_code, result.stdout, result.stderr


def printed_public_key(stdout: str) -> str:
    [key] = [line.strip() for line in stdout.splitlines() if line.strip().startswith("age1")]
    return key


def test_the_pair_is_written_owner_only_and_works(tmp_path: Path) -> None:
    out = tmp_path / "archive-key.txt"
    code, stdout, stderr = keygen("--out", str(out))
    assert code == 0, stderr
    public = printed_public_key(stdout)
    Archive(age_recipients=[public])  # the profile accepts it
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="ascii")
    assert f"# public key: {public}\n" in text
    private = read_identity_file(out)
    assert private.startswith("AGE-SECRET-KEY-1")
    # The private key is in the file only: not on the screen.
    assert private not in stdout + stderr
    assert "NEVER on the report server" in stdout
    sealed = pyrage.encrypt(b"a report", [pyrage.x25519.Recipient.from_str(public)])
    identity = pyrage.x25519.Identity.from_str(private)
    assert pyrage.decrypt(sealed, [identity]) == b"a report"


def test_the_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        assert keygen("--out", str(tmp_path / "key.txt"))[0] == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "key.txt").stat().st_mode) == 0o600


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "archive-key.txt"
    assert keygen("--out", str(out))[0] == 0
    before = out.read_bytes()
    code, stdout, stderr = keygen("--out", str(out))
    assert code == 1
    assert "already exists; not overwriting it" in stderr
    assert "age1" not in stdout, "no key is offered whose private half was not kept"
    assert out.read_bytes() == before


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    link = tmp_path / "key.txt"
    link.symlink_to(target)
    code, _, stderr = keygen("--out", str(link))
    assert code == 1 and "already exists" in stderr
    assert not target.exists()


def test_a_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    code, _, stderr = keygen("--out", str(tmp_path / "nowhere" / "key.txt"))
    assert code == 1
    assert stderr.startswith("Error: Cannot create ") and "Traceback" not in stderr


def test_without_out_the_private_key_is_shown_once_with_a_warning() -> None:
    code, stdout, stderr = keygen()
    assert code == 0
    public = printed_public_key(stdout)
    assert "AGE-SECRET-KEY-1" not in stdout, "stdout (often redirected) holds the public key only"
    assert "WARNING" in stderr and "NEVER on the report server" in stderr
    [private] = [w for w in stderr.split() if w.startswith("AGE-SECRET-KEY-1")]
    identity = pyrage.x25519.Identity.from_str(private)
    assert str(identity.to_public()) == public


def test_each_run_makes_a_new_pair() -> None:
    assert printed_public_key(keygen()[1]) != printed_public_key(keygen()[1])


@pytest.mark.parametrize("args", [["--help"]])
def test_help_says_where_the_private_key_belongs(args: list[str]) -> None:
    code, stdout, _ = keygen(*args)
    assert code == 0 and "never be on the" in stdout

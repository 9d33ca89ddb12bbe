"""Whichever command makes the data dir, it is 0700 and every file in it 0600.

Every test runs under a umask that would leave files readable by everyone (022), with a
data dir that does not exist yet, and no secret key set (so the command makes one).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from outreach import cli
from outreach.cli import main
from tests.conftest import REPO
from tests.private_files import loose_modes, umask


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    with umask(0o022):
        yield


def run(data_dir: Path, *args: str) -> Any:
    env = {"OUTREACH_DATA_DIR": str(data_dir), "OUTREACH_SECRET_KEY": None}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(
    "command",
    [
        ["purge"],
        ["audit"],
        ["audit", "--verify"],
        ["stats"],
        ["staff", "add", "someone@example.org", "--role", "admin"],
        ["staff", "list"],
    ],
    ids=" ".join,
)
def test_a_command_makes_a_private_data_dir(tmp_path: Path, command: list[str]) -> None:
    data_dir = tmp_path / "var"
    run(data_dir, *command)
    assert (data_dir / "secret_key").is_file()
    assert loose_modes(data_dir) == []


def test_the_database_and_its_companions_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    run(data_dir, "staff", "add", "someone@example.org", "--role", "admin")
    database = data_dir / "reports.sqlite3"
    with closing(sqlite3.connect(database)) as reader:  # keeps -wal and -shm in place
        reader.execute("SELECT count(*) FROM staff_users").fetchall()
        run(data_dir, "staff", "add", "other@example.org", "--role", "intake")
        assert (data_dir / "reports.sqlite3-wal").exists()
        assert loose_modes(data_dir) == []


def test_a_data_dir_left_readable_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    run(data_dir, "staff", "add", "someone@example.org", "--role", "admin")
    os.chmod(data_dir, 0o755)
    for path in data_dir.iterdir():
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    run(data_dir, "staff", "list")
    assert loose_modes(data_dir) == []


def _fake_build(loaded: Any, out: Path, jobs: int | None = None) -> list[str]:
    """What a build leaves: folders and files made with the umask's modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    (out / "es").mkdir(parents=True)
    (out / "index.html").write_text("<h1>en</h1>")
    (out / "es" / "index.html").write_text("<h1>es</h1>")
    return ["en", "es"]


def test_a_site_build_into_the_data_dir_keeps_it_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "build_site", _fake_build)
    data_dir = tmp_path / "var"
    run(data_dir, "build", "--out", str(data_dir / "site"))
    assert (data_dir / "site" / "es" / "index.html").is_file()
    assert loose_modes(data_dir) == []


def test_a_site_built_elsewhere_stays_readable_for_the_web_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "build_site", _fake_build)
    data_dir = tmp_path / "var"
    run(data_dir, "build", "--out", str(tmp_path / "public"))
    assert not data_dir.exists()
    assert stat.S_IMODE((tmp_path / "public" / "index.html").stat().st_mode) == 0o644


def test_the_real_build_into_the_data_dir_keeps_it_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    run(data_dir, "build", "--out", str(data_dir / "site"), "--jobs", "2")
    assert (data_dir / "site" / "es" / "index.html").is_file()
    assert loose_modes(data_dir) == []


def test_check_makes_no_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    run(data_dir, "check")
    assert not data_dir.exists()


def test_the_worker_makes_a_private_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = {**os.environ, "OUTREACH_DATA_DIR": str(data_dir)}
    env.pop("OUTREACH_SECRET_KEY", None)
    outreach = Path(sys.executable).with_name("outreach")
    worker = subprocess.Popen(
        [str(outreach), "worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        pipes = data_dir / "reports.sqlite3-wakeups"
        while not (pipes.is_dir() and any(pipes.iterdir())):  # listening: all is made
            assert worker.poll() is None, worker.communicate()[0]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        assert loose_modes(data_dir) == []
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=20)

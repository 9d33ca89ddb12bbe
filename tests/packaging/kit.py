"""The kit as an agency gets it: a wheel built from the tree, installed in a fresh venv.

Builds start from a copy of the checkout's files (as git lists them), so they never pick up
a stale build/ or egg-info folder, and a test may change the copy (a page, the version)
without touching the checkout. Installs resolve the dependencies through constraints.txt,
the way `make` does, and nothing from the checkout is on the installed kit's path.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

CONSTRAINTS = REPO / "constraints.txt"
_VERSION = re.compile(r'^version = "([^"]+)"$', re.M)


def run(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, (
        f"`{' '.join(args)}` exited with {result.returncode}\n{result.stdout}{result.stderr}"
    )
    return result


def copy_tree(target: Path) -> Path:
    """The checkout's files, tracked or new (ignored ones left out), copied under *target*."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is not shipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def kit_version(tree: Path) -> str:
    found = _VERSION.search((tree / "pyproject.toml").read_text(encoding="utf-8"))
    assert found, "no version in pyproject.toml"
    return found.group(1)


def set_kit_version(tree: Path, version: str) -> None:
    pyproject = tree / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(_VERSION.sub(f'version = "{version}"', text, count=1), encoding="utf-8")


def next_version(version: str) -> str:
    """*version* with its last number one higher: 0.1.0 -> 0.1.1."""
    head, _, last = version.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)


def build_wheel(tree: Path, out: Path) -> Path:
    """The wheel of *tree*, in *out*, next to the build's log (build.log)."""
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(tree)]
    )
    (out / "build.log").write_text(built.stdout + built.stderr, encoding="utf-8")
    (wheel,) = out.glob("outreach_kit-*.whl")
    return wheel


@dataclass(frozen=True)
class InstalledKit:
    """A virtual environment holding the kit; `outreach` runs with a clean environment."""

    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("OUTREACH_") and name not in {"PYTHONPATH", "VIRTUAL_ENV"}
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def pip_install(self, *args: str) -> None:
        # The venv has no pip of its own; the test runner's pip installs into it.
        pip = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet"]
        run([*pip, "-c", str(CONSTRAINTS), *args], env=self.env())

    def outreach(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run([str(self.venv / "bin" / "outreach"), *args], cwd=cwd, env=self.env())

    def start(self, *args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [str(self.venv / "bin" / "outreach"), *args],
                cwd=cwd,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def new_venv(path: Path) -> InstalledKit:
    run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    return InstalledKit(path)


def folder_digest(folder: Path) -> str:
    """One hash over every file's path and bytes: any change to the folder changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for_200(urls: list[str], process: subprocess.Popen[bytes], deadline: float) -> bool:
    """True once every URL answers 200; False if the server stops or time runs out first."""
    pending = list(urls)
    while pending and process.poll() is None and time.monotonic() < deadline:
        if status_of(pending[0]) == 200:
            pending.pop(0)
        else:
            time.sleep(0.5)
    return not pending


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

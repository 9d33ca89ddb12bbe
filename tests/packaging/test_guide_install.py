"""The single-machine guide's install, run as written on this machine, then its units.

The commands of the guide's "Install the kit" block run in order, with a test folder in
place of /opt/outreach, the wheel built from this checkout in place of the example's, and
without `sudo` (the test runs as root in CI). The service's user is `nobody`, switched to
with `runuser -u` as the guide says for machines without sudo: it must be able to run the
kit that root installed and read the profile, which fails if the virtual environment's
Python lives where only root can read (a pyenv under /root). Then the units' ExecStart
lines for the service and the worker run as that user, and a report goes through.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO_PROFILE, require_tool
from tests.databases import Database
from tests.form_service.test_deploy_guides import (
    Paths,
    all_delivered,
    fenced,
    send_reports,
    service_env,
    settings_lines,
    unit_lines,
    wait_for,
)
from tests.form_service.test_proxies import debian_nginx_conf, self_signed

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

PAGE = "deploy-single-machine.md"
GUIDE_WHEEL = "outreach_kit-0.1.0-py3-none-any.whl"
SERVICE_USER = "nobody"
AS_ROOT = os.getuid() == 0


def install_commands() -> list[str]:
    """The `$ ` lines of the block that installs the kit."""
    (block,) = [b for b in fenced(PAGE, "text") if "python3 -m venv /opt/outreach/.venv" in b]
    return [line.removeprefix("$ ") for line in block.splitlines() if line.startswith("$ ")]


def as_here(command: str, opt: Path, wheel: Path) -> list[str]:
    """*command* for this machine: paths in the test folder, root's commands without sudo,
    the service user's as the guide says to run them without sudo."""
    command = command.replace("/opt/outreach", str(opt)).replace(GUIDE_WHEEL, wheel.name)
    words = shlex.split(command)
    if words[:3] == ["sudo", "-u", "outreach"]:
        return ["runuser", "-u", SERVICE_USER, "--", *words[3:]] if AS_ROOT else words[3:]
    assert words[0] == "sudo", command
    return words[1:]


@pytest.fixture
def world_readable() -> Iterator[Path]:
    """A folder other users can enter (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="outreach-guide-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def clean_env() -> dict[str, str]:
    """An operator's shell: nothing of the test runner's Python or settings."""
    leave_out = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in leave_out and not name.startswith(("OUTREACH_", "PIP_REQUIRE"))
    }


def run_as_guide(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        words, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{shlex.join(words)}\n{done.stdout}{done.stderr}"
    return done


def test_the_guides_install_and_units_run_as_the_service_user(
    kit_wheel: Path, world_readable: Path
) -> None:
    require_tool("sqlite3", "the guide's install (apt-get install sqlite3)")
    opt = world_readable / "opt-outreach"
    here = world_readable / "download"  # what the operator copied to the machine
    (here / "agencies").mkdir(parents=True)
    shutil.copy(kit_wheel, here / kit_wheel.name)
    shutil.copy(Path(__file__).parents[2] / "constraints.txt", here / "constraints.txt")
    shutil.copytree(DEMO_PROFILE, here / "agencies" / "riverside")

    commands = install_commands()
    assert commands[0].startswith("sudo apt install") and "sqlite3" in commands[0]
    for package in shlex.split(commands[0])[3:]:
        installed = subprocess.run(["dpkg", "-s", package], capture_output=True)
        assert installed.returncode == 0, f"{package}: not installed (apt-get install)"
    for command in commands[1:]:
        words = as_here(command, opt, kit_wheel)
        if words[1:3] == ["-m", "venv"]:
            assert words[0] == "/usr/bin/python3", "the guide's venv is of Debian's Python"
        checked = run_as_guide(words, here)
    assert ": OK (" in checked.stdout, "the last command checks the profile as the service user"
    venv_python = (opt / ".venv" / "bin" / "python").resolve()
    assert not str(venv_python).startswith(("/root", "/home")), venv_python

    # The units' service and worker, as the service user, from the installed kit.
    data_root = world_readable / "var"
    paths = Paths(data_root, opt / "agencies" / "riverside")
    paths.replace["/opt/outreach/.venv/bin/outreach"] = str(opt / ".venv" / "bin" / "outreach")
    if AS_ROOT:
        shutil.chown(data_root, SERVICE_USER)
        for folder in [data_root, *data_root.rglob("*")]:
            shutil.chown(folder, SERVICE_USER)
    settings = settings_lines(PAGE)
    env = service_env(settings, paths) | {"PATH": clean_env()["PATH"]}
    env.pop("PYTHONPATH", None)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for key in (" serve ", " worker "):
            (line,) = [line for line in unit_lines(PAGE, "ExecStart") if key in line]
            words = shlex.split(paths(line))
            if AS_ROOT:
                words = ["runuser", "-u", SERVICE_USER, "--", *words]
            log = (world_readable / f"unit{len(started)}.log").open("wb")
            started.append(subprocess.Popen(words, env=env, stdout=log, stderr=log, cwd=paths.data))
            log.close()
        url = f"http://127.0.0.1:{paths.port}"
        wait_for(lambda: _answers(url, started, world_readable), 90, "the installed service")
        send_reports(url, 2)
        database = Database(
            "sqlite", settings["OUTREACH_DATABASE_URL"], path=paths.data / "reports.sqlite3"
        )
        wait_for(lambda: all_delivered(database, paths), 60, "delivery by the worker unit")
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(30)
    for server in ("caddy", "nginx"):
        proxy_steps(server, opt, world_readable / server, settings)


def proxy_steps(server: str, opt: Path, folder: Path, settings: dict[str, str]) -> None:
    """The guide's steps for *server*, with the installed kit: make its configuration from
    the settings file, enable it (nginx: and disable Debian's default site), check it."""
    require_tool("caddy" if server == "caddy" else "/usr/sbin/nginx", f"the guide's {server}")
    (block,) = [b for b in fenced(PAGE, "text") if f"outreach deploy {server}" in b]
    lines = [line.removeprefix("$ ") for line in block.splitlines() if line.startswith("$ ")]
    folder.mkdir()
    (folder / "sites-enabled").mkdir()
    (folder / "sites-available").mkdir()
    (folder / "log").mkdir()
    shutil.copy("/etc/nginx/sites-available/default", folder / "sites-enabled" / "default")
    env_file = folder / "outreach.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
    (folder / "nginx.conf").write_text(debian_nginx_conf(folder), encoding="utf-8")
    replace = {
        "/etc/outreach/outreach.env": str(env_file),
        "/opt/outreach": str(opt),
        "/etc/caddy/Caddyfile": str(folder / "Caddyfile"),
        "/etc/nginx/sites-": str(folder / "sites-"),
        " > ": f" --pages {folder / 'pages'} > ",
        "nginx -t": f"nginx -t -c {folder / 'nginx.conf'}",
    }
    env = clean_env() | {
        "HOME": str(folder),
        "XDG_DATA_HOME": str(folder),
        "XDG_CONFIG_HOME": str(folder),
    }
    for line in lines:
        if line.startswith(("sudo apt install", "sudo systemctl")):
            continue  # installed by .ci/run; no systemd in the test
        for old, new in replace.items():
            line = line.replace(old, new)
        if "nginx -t" in line:  # certbot's certificate, made here instead
            cert, key = self_signed(folder)
            site = folder / "sites-available" / "outreach"
            text = re.sub(r"/etc/letsencrypt/live/[^/]+/fullchain.pem", str(cert), site.read_text())
            site.write_text(re.sub(r"/etc/letsencrypt/live/[^/]+/privkey.pem", str(key), text))
        words = shlex.split(line)
        assert words[0] == "sudo", line
        done = subprocess.run(words[1:], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    assert (folder / "pages" / "503.es.html").is_file()


def _answers(url: str, started: list[subprocess.Popen[bytes]], logs: Path) -> bool:
    for n, process in enumerate(started):
        assert process.poll() is None, (logs / f"unit{n}.log").read_text()
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

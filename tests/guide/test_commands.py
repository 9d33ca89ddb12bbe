"""Every command the agency guide shows works, and the guide shows every `outreach` command.

The commands of each guide page (the ``$ `` lines of its ```console blocks) run in order,
as a reader would type them, in a fresh folder that stands for the kit's folder: it holds a
copy of the kit's base pages, guide examples, templates and catalogs (what the commands
copy or read), and no agency. `outreach` is the one installed with the kit. A line that
starts the preview server runs until the site answers on a free port, then is stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click
import pytest

from outreach.cli import main
from tests.conftest import REPO, free_port
from tests.guide.guide_text import all_shown_commands, console_commands, guide_pages

BIN = Path(sys.executable).parent
# What the guide's commands read: the base pages and the kit's code, templates and catalogs.
KIT_PARTS = ("mkdocs.yml", "docs", "guide", "templates", "outreach", "form_service")
SERVE = re.compile(r"^outreach\s+serve\b")


def kit_copy(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo")
    for part in KIT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=ignore)
        else:
            shutil.copyfile(source, target / part)


def command_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_shell(command: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"`$ {command}` exited with {result.returncode}\n{result.stdout}{result.stderr}"
    )


def with_free_port(command: str) -> tuple[list[str], int]:
    args = shlex.split(command)
    port = free_port()
    if "--port" in args:
        args[args.index("--port") + 1] = str(port)
    else:
        args += ["--port", str(port)]
    return args, port


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def run_serve(command: str, cwd: Path, env: dict[str, str]) -> None:
    args, port = with_free_port(command)
    log = cwd / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            ok = False
            while time.monotonic() < deadline and process.poll() is None:
                if answers_200(f"http://127.0.0.1:{port}/"):
                    ok = True
                    break
                time.sleep(0.3)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert ok, f"`$ {command}` never answered 200 on /:\n{log.read_text()}"


def _page_params() -> list[object]:
    params: list[object] = []
    for page in guide_pages():
        commands = console_commands(page)
        if not commands:
            continue
        serves = any(SERVE.match(command) for command in commands)
        marks = [pytest.mark.server] if serves else []
        params.append(pytest.param(page, id=page.stem, marks=marks))
    return params


@pytest.mark.parametrize("page", _page_params())
def test_every_command_of_the_page_runs_in_order(page: Path, tmp_path: Path) -> None:
    kit_copy(tmp_path)
    env = command_env()
    for command in console_commands(page):
        if SERVE.match(command):
            run_serve(command, tmp_path, env)
        else:
            run_shell(command, tmp_path, env)


def cli_subcommands() -> set[str]:
    context = click.Context(main)
    names = set()
    for name in main.list_commands(context):
        command = main.get_command(context, name)
        if command is not None and not command.hidden:
            names.add(name)
    return names


def test_the_guide_shows_every_outreach_subcommand() -> None:
    shown = set()
    for command in all_shown_commands():
        words = shlex.split(command)
        if len(words) > 1 and words[0] == "outreach":
            shown.add(words[1])
    missing = sorted(cli_subcommands() - shown)
    assert not missing, f"`outreach {missing[0]}` is not shown in any guide page: {missing}"


def test_the_subcommand_list_comes_from_the_cli() -> None:
    assert {"check", "build", "serve", "new"} <= cli_subcommands()


def test_the_guide_shows_commands() -> None:
    assert len(_page_params()) >= 4
    assert any(SERVE.match(command) for command in all_shown_commands())


def cli_options() -> list[tuple[str, str]]:
    """(command, --option) for every long option of every `outreach` command."""
    context = click.Context(main)
    found: list[tuple[str, str]] = []

    def walk(command: click.Command, name: str) -> None:
        if isinstance(command, click.Group):
            for sub in command.list_commands(context):
                child = command.get_command(context, sub)
                if child is not None and not child.hidden:
                    walk(child, f"{name} {sub}".strip())
            return
        for param in command.params:
            found.extend((name, opt) for opt in param.opts if opt.startswith("--"))

    walk(main, "")
    return found


def test_the_guide_names_every_option_of_every_command() -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in guide_pages())
    missing = [f"outreach {name} {option}" for name, option in cli_options() if option not in text]
    assert not missing, f"not in any guide page: {missing}"
    assert ("check", "--deploy") in cli_options() and ("build", "--draft") in cli_options()

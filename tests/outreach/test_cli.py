"""The outreach command: every failure is one clear sentence and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from outreach.cli import main
from tests.conftest import REPO, edit_yaml, free_port

OUTREACH = str(Path(sys.executable).with_name("outreach"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTREACH, *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [[], ["check"], ["build"], ["serve"], ["new"]])
def test_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_check_prints_partners_and_routing() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "agencies/demo/agency.yml: OK (Harbor County Prevention Team)" in result.output
    assert "sheriff-tau (law_enforcement) via maildir; agreement HC-ISA-05" in result.output
    assert "Routing (every kind of report and who receives it):" in result.output
    assert "intake-team, harbor-schools [schools-north-south, after review]" in result.output


def test_check_reports_every_problem_without_a_traceback(demo_copy: Path) -> None:
    def break_it(data: dict) -> None:
        data["languages"] = ["en", "es", "zz"]
        data["agency"]["email"] = "nobody"

    edit_yaml(demo_copy / "agency.yml", break_it)
    result = run("check", "--profile", str(demo_copy))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error: 2 problems in the agency profile:")
    assert "agency.email: not an e-mail address" in result.stderr
    assert "languages[2]: 'zz' is not an ISO 639 language code" in result.stderr


def test_missing_profile_is_one_sentence(tmp_path: Path) -> None:
    result = run("check", "--profile", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "no agency profile here" in result.stderr and "Traceback" not in result.stderr


def test_new_agency_passes_check_and_builds_with_its_own_name(tmp_path: Path) -> None:
    created = run("new", "lakeside-county", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Created agencies/lakeside-county" in created.stdout
    assert "AGE-SECRET-KEY-" in created.stderr, "the archive private key is shown once"
    profile = tmp_path / "agencies" / "lakeside-county"
    assert "AGE-SECRET-KEY" not in (profile / "agency.yml").read_text()
    checked = run("check", "--profile", "agencies/lakeside-county", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    built = run("build", "--profile", "agencies/lakeside-county", "--out", "public", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    home = (tmp_path / "public" / "index.html").read_text()
    assert "Lakeside County Prevention Team" in home and "Harbor" not in home


@pytest.mark.parametrize(
    ("agency_id", "message"),
    [("Bad Id", "cannot be an agency id"), ("../escape", "cannot be an agency id")],
)
def test_new_rejects_bad_ids(tmp_path: Path, agency_id: str, message: str) -> None:
    result = run("new", agency_id, cwd=tmp_path)
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "agencies").exists()


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run("new", "twice", cwd=tmp_path).returncode == 0
    again = run("new", "twice", cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_build_failure_keeps_the_previous_site(tmp_path: Path) -> None:
    assert run("new", "riverside", cwd=tmp_path).returncode == 0
    args = ["build", "--profile", "agencies/riverside", "--out", "public"]
    assert run(*args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "public" / "index.html").read_text()
    page = tmp_path / "agencies" / "riverside" / "docs" / "en" / "index.md"
    page.write_text("# Home\n\n{{ agency.fax }}\n")
    failed = run(*args, cwd=tmp_path)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("Error: The site was not built (the previous one is kept):")
    assert "index.md line 3: unknown variable" in failed.stderr
    assert (tmp_path / "public" / "index.html").read_text() == before


def test_profile_option_accepts_the_yaml_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--profile",
            str(REPO / "agencies/demo/agency.yml"),
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "es" / "index.html").is_file()


@pytest.mark.server
def test_serve_answers_in_both_languages(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OUTREACH_DATA_DIR": str(tmp_path / "var")}
    server = subprocess.Popen(
        [OUTREACH, "serve", "--port", str(port), "--out", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pages = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pages:
            try:
                for path in ("/", "/es/", "/es/warning-signs/"):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        pages[path] = (r.status, r.read().decode())
            except OSError:
                pages = {}
                time.sleep(0.3)
        assert pages, "the server did not answer"
        assert all(status == 200 for status, _ in pages.values())
        assert "Harbor County Prevention Team" in pages["/"][1]
        assert '<html lang="es"' in pages["/es/warning-signs/"][1]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert f"at http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output

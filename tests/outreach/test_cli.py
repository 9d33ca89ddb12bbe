"""The outreach command: every failure is one clear sentence and a non-zero exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from outreach.cli import main
from outreach.loader import load_profile
from tests.conftest import REPO, edit_yaml, fill_placeholders, free_port

OUTREACH = str(Path(sys.executable).with_name("outreach"))


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OUTREACH, *args], cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [[], ["check"], ["build"], ["serve"], ["new"], ["worker"]])
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


def test_new_agency_builds_as_a_draft_until_its_placeholders_are_replaced(
    tmp_path: Path,
) -> None:
    created = run("new", "lakeside-county", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Created agencies/lakeside-county" in created.stdout
    assert "AGE-SECRET-KEY-" in created.stderr, "the archive private key is shown once"
    profile = tmp_path / "agencies" / "lakeside-county"
    assert "AGE-SECRET-KEY" not in (profile / "agency.yml").read_text()

    refused = run("check", "--profile", "agencies/lakeside-county", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: 2 problems in the agency profile:")
    assert "agency.address: still the placeholder 'CHANGE-ME office address" in refused.stderr
    assert "agency.liaison.name: still the placeholder 'CHANGE-ME liaison name'" in refused.stderr
    build = ["build", "--profile", "agencies/lakeside-county", "--out", "public"]
    assert run(*build, cwd=tmp_path).returncode == 1

    drafted = run(*build, "--draft", cwd=tmp_path)
    assert drafted.returncode == 0, drafted.stderr
    assert "Built en into public (a draft)" in drafted.stdout
    assert "Warning: agencies/lakeside-county/agency.yml: agency.address:" in drafted.stderr
    pages = list((tmp_path / "public").rglob("index.html"))
    assert len(pages) > 5
    for page in pages:
        html = page.read_text()
        assert '<meta name="robots" content="noindex">' in html, page
        assert "Draft: this site is not ready to publish." in html, page

    fill_placeholders(profile)
    checked = run("check", "--profile", "agencies/lakeside-county", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    # Its intake team's Maildir is encrypted to the archive key: nothing rests in plaintext.
    assert "PLAINTEXT" not in checked.stderr
    loaded = load_profile(profile)
    (intake,) = loaded.profile.partners
    assert intake.delivery.maildir is not None
    assert intake.delivery.age_recipient == loaded.profile.archive.age_recipients[0]
    built = run(*build, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    home = (tmp_path / "public" / "index.html").read_text()
    assert "Lakeside County Prevention Team" in home and "Harbor" not in home
    assert "noindex" not in home and "Draft:" not in home and 'class="md-banner"' not in home


def test_check_warns_loudly_of_each_maildir_holding_plaintext(demo_copy: Path) -> None:
    result = run("check", "--profile", str(demo_copy))
    assert result.returncode == 0
    warned = re.findall(
        r"WARNING: ([a-z-]+): reports are delivered into the Maildir", result.stderr
    )
    loaded = load_profile(demo_copy)
    plain = [p.id for p in loaded.profile.partners if p.delivery.channel == "maildir"]
    assert warned == plain and len(plain) > 1
    assert "IN PLAINTEXT" in result.stderr and "age_recipient" in result.stderr

    key = loaded.profile.archive.age_recipients[0]

    def seal_all(data: dict) -> None:
        for partner in data["partners"]:
            if partner["delivery"]["channel"] == "maildir":
                partner["delivery"]["age_recipient"] = key

    edit_yaml(demo_copy / "agency.yml", seal_all)
    sealed = run("check", "--profile", str(demo_copy))
    assert sealed.returncode == 0 and "PLAINTEXT" not in sealed.stderr


def test_check_names_every_mistake_in_one_run(demo_copy: Path) -> None:
    def plant_mistakes(data: dict) -> None:
        data["agency"]["email"] = "nobody"  # schema
        data["routing"]["rules"][0]["send_to"].append("ghost-partner")  # dangling reference
        data["agency"]["logo"] = "missing-logo.svg"  # missing file
        del data["routing"]["intake"]  # routing: kinds of report reach nobody
        data["agency"]["hours"] = "CHANGE-ME opening hours"  # placeholder

    edit_yaml(demo_copy / "agency.yml", plant_mistakes)
    result = run("check", "--profile", str(demo_copy))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: 5 problems in the agency profile:"), result.stderr
    shown = "agencies/demo/agency.yml"
    for line in (
        "agency.email: not an e-mail address",
        "routing.rules[0].send_to[1]: no partner has the id 'ghost-partner'",
        "agency.logo: no file 'missing-logo.svg' in ",
        "routing: ",
        "agency.hours: still the placeholder 'CHANGE-ME opening hours'",
    ):
        assert f"{shown}: {line}" in result.stderr, line
    assert "kinds of report reach nobody" in result.stderr


def test_check_warns_of_areas_only_the_intake_team_hears_about(demo_copy: Path) -> None:
    def add_island(data: dict) -> None:
        data["areas"].append({"id": "island", "name": "Harbor Island"})
        for rule in data["routing"]["rules"]:
            rule.setdefault("match", {})["areas"] = ["north", "south", "east"]

    edit_yaml(demo_copy / "agency.yml", add_island)
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert result.exit_code == 0, result.output
    warnings = result.output.split("Warnings:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(warnings) == 1 and warnings[0].endswith(
        "agencies/demo/agency.yml: areas[3]: no partner serves area 'island': "
        "only the intake team receives its reports (add a routing rule that sends them to a "
        "partner)"
    )
    assert "'north'" not in result.output.split("Languages:")[0]


def test_demo_check_has_no_warnings() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0 and "Warning" not in result.output


def test_check_says_contact_details_only_for_partners_that_may_receive_them() -> None:
    result = CliRunner().invoke(main, ["check"])
    lines = {line.split()[0]: line for line in result.output.splitlines() if " via " in line}
    assert lines["eastwood-schools"].endswith("danger_now; no contact details")
    assert "consent" not in lines["eastwood-schools"]
    assert lines["harbor-schools"].endswith("contact; contact details with consent")
    assert lines["intake-team"].endswith("contact; contact details always")


def with_webhook(folder: Path, variable: str = "BAYSIDE_HOOK_SECRET") -> None:
    def webhook(data: dict) -> None:
        data["partners"][3]["delivery"] = {
            "channel": "webhook",
            "webhook": {"url": "https://hooks.bayside.example.edu/reports", "secret_env": variable},
        }

    edit_yaml(folder / "agency.yml", webhook)


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def test_check_deploy_names_the_partner_and_the_missing_secret(demo_copy: Path) -> None:
    with_webhook(demo_copy)
    assert run("check", "--profile", str(demo_copy)).returncode == 0, "no secret needed"
    env = without("BAYSIDE_HOOK_SECRET")
    missing = run("check", "--deploy", "--profile", str(demo_copy), env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        "Error: Not ready to deploy: 1 secret missing from the environment:\n"
    )
    assert missing.stderr.endswith(
        "agencies/demo/agency.yml: partners[3].delivery.webhook.secret_env: partner "
        "bayside-college (Bayside Community College Behavioral Intervention Team) needs "
        "the environment variable BAYSIDE_HOOK_SECRET, which is not set\n"
    )
    secret = "whsec_dG9wLXNlY3JldC12YWx1ZQ=="
    ready = run(
        "check", "--deploy", "--profile", str(demo_copy), env={**env, "BAYSIDE_HOOK_SECRET": secret}
    )
    assert ready.returncode == 0, ready.stderr
    assert secret not in ready.stdout + ready.stderr


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_delivering_commands_refuse_to_start_without_a_secret(
    demo_copy: Path, tmp_path: Path, command: str
) -> None:
    with_webhook(demo_copy)
    args = ["--port", str(free_port()), "--out", str(tmp_path / "site")]
    env = {**without("BAYSIDE_HOOK_SECRET"), "OUTREACH_DATA_DIR": str(tmp_path / "var")}
    result = run(
        command, "--profile", str(demo_copy), *(args if command == "serve" else []), env=env
    )
    assert result.returncode == 1
    assert "1 secret missing from the environment" in result.stderr
    assert "bayside-college" in result.stderr and "BAYSIDE_HOOK_SECRET" in result.stderr
    assert not (tmp_path / "site").exists(), "refused before building"


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
    fill_placeholders(tmp_path / "agencies" / "riverside")
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

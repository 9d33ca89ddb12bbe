"""The profile's staff_notices section: defaults, and every problem named by its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from outreach.cli import main
from outreach.loader import load_profile
from tests.conftest import edit_yaml
from tests.outreach.test_loader import problems_of

SHOWN = "agencies/demo/agency.yml"


def named(problems: list[str], start: str) -> bool:
    return any(f"{SHOWN}: {start}" in p for p in problems)


def test_demo_notices_staff_in_a_maildir(demo: Any) -> None:
    notices = demo.profile.staff_notices
    assert notices is not None
    assert (notices.channel, notices.every_minutes) == ("maildir", 15)
    assert notices.maildir is not None and notices.maildir.folder == "staff-notices"


def test_every_minutes_defaults_to_fifteen(demo_copy: Path) -> None:
    def without_minutes(data: dict[str, Any]) -> None:
        data["staff_notices"].pop("every_minutes")

    edit_yaml(demo_copy / "agency.yml", without_minutes)
    notices = load_profile(demo_copy).profile.staff_notices
    assert notices is not None and notices.every_minutes == 15


def test_without_the_section_no_staff_notices(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda data: data.pop("staff_notices"))
    assert load_profile(demo_copy).profile.staff_notices is None


def test_every_problem_is_named_at_once(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["staff_notices"].update(channel="email", every_minutes=0, language="fr")

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert named(problems, "staff_notices.every_minutes: Input should be greater than"), problems


def test_the_channel_needs_its_settings_and_no_other(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["staff_notices"].update(channel="email", language="fr")

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert named(problems, "staff_notices.email: required when channel is 'email'"), problems
    assert named(problems, "staff_notices.maildir: not used when channel is 'email'"), problems
    assert named(problems, "staff_notices.language: 'fr' is not a profile language"), problems


def test_email_settings_name_no_recipients_and_no_webhook(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["staff_notices"] = {
            "channel": "webhook",
            "email": {
                "to": ["all@example.org"],
                "smtp_host": "smtp.example.org",
                "sender": "inbox@example.org",
            },
        }

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert named(problems, "staff_notices.channel: Input should be 'email' or 'maildir'")
    assert named(problems, "staff_notices.email.to: unknown key"), problems


def test_check_prints_how_staff_are_told(demo_copy: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert result.exit_code == 0, result.output
    tail = result.output.split("\nStaff notices: ", 1)[1]
    assert tail.startswith("maildir staff-notices, to each user's account address;")
    assert "at most one every 15 min per user" in tail
    edit_yaml(demo_copy / "agency.yml", lambda data: data.pop("staff_notices"))
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert "\nStaff notices: none" in result.output

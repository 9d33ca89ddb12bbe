"""The profile's escalation section: defaults, and every problem named by its key path."""

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
    """Whether a problem of the demo copy's profile begins (after its file) with *start*."""
    return any(f"{SHOWN}: {start}" in p for p in problems)


def test_demo_escalates_to_two_maildir_contacts(demo: Any) -> None:
    escalation = demo.profile.escalation
    assert escalation is not None
    assert (escalation.after_minutes, escalation.repeat_minutes) == (10, 10)
    assert [c.channel for c in escalation.contacts] == ["maildir", "maildir"]


def test_minutes_default_to_ten(demo_copy: Path) -> None:
    def only_contacts(data: dict[str, Any]) -> None:
        data["escalation"] = {"contacts": data["escalation"]["contacts"]}

    edit_yaml(demo_copy / "agency.yml", only_contacts)
    escalation = load_profile(demo_copy).profile.escalation
    assert escalation is not None
    assert (escalation.after_minutes, escalation.repeat_minutes) == (10, 10)


def test_without_the_section_nothing_escalates(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda data: data.pop("escalation"))
    assert load_profile(demo_copy).profile.escalation is None


def test_every_escalation_problem_is_named_at_once(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        escalation = data["escalation"]
        escalation["after_minutes"] = 0
        escalation["repeat_minutes"] = "soon"
        escalation["contacts"][1]["channel"] = "sms"

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert named(problems, "escalation.after_minutes: Input should be greater than"), problems
    assert named(problems, "escalation.repeat_minutes: "), problems
    assert named(problems, "escalation.contacts[1].channel: Input should be 'email'"), problems


def test_contacts_are_checked_as_partner_deliveries_are(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        first, second = data["escalation"]["contacts"]
        first["channel"] = "email"
        second["language"] = "fr"
        second["age_recipient"] = "age1" + "q" * 58

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert named(problems, "escalation.contacts[0].email: required when channel is 'email'")
    assert named(problems, "escalation.contacts[0].maildir: not used when channel is 'email'")
    assert named(problems, "escalation.contacts[1].language: 'fr' is not a profile language")
    assert named(problems, "escalation.contacts[1].age_recipient: not used; a notice carries")


def test_an_empty_contact_list_is_refused(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda data: data["escalation"].update(contacts=[]))
    problems = problems_of(demo_copy)
    assert named(problems, "escalation.contacts: List should have at least 1"), problems


def test_check_prints_the_chain(demo_copy: Path) -> None:
    def webhook_second(data: dict[str, Any]) -> None:
        data["escalation"]["contacts"][1] = {
            "channel": "webhook",
            "webhook": {"url": "https://pager.example.org/hook?token=abc", "secret_env": "PAGER"},
        }

    edit_yaml(demo_copy / "agency.yml", webhook_second)
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert result.exit_code == 0, result.output
    tail = result.output.split("\nEscalation", 1)[1]
    assert "after 10 min, then every 10 min" in tail
    assert "  1. maildir duty-phone\n" in tail
    assert "  2. webhook https://pager.example.org\n" in tail
    assert "token" not in tail

"""`outreach check` refuses pages that promise reading the profile does not configure."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from outreach.cli import main
from outreach.loader import load_profile
from outreach.site.claims import contradicted_claims
from tests.conftest import edit_yaml

OVERPROMISE = {
    "en": "# Contact\n\nCall us in office hours. Our team reads every report day and night.\n",
    "es": "# Contacto\n\nNuestro equipo lee cada reporte día y noche.\n",
}


def write_page(agency: Path, lang: str, text: str, name: str = "contact.md") -> None:
    folder = agency / "docs" / lang
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def reads(agency: Path, when: str) -> None:
    edit_yaml(agency / "agency.yml", lambda data: data["agency"].update(reads_reports=when))


def test_the_demos_pages_promise_nothing_it_does_not_configure() -> None:
    assert contradicted_claims(load_profile(Path("agencies/demo"))) == []


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_round_the_clock_promise_on_office_hours_is_named_with_its_file(
    demo_copy: Path, lang: str
) -> None:
    write_page(demo_copy, "en", OVERPROMISE["en"])
    write_page(demo_copy, lang, OVERPROMISE[lang])
    claims = contradicted_claims(load_profile(demo_copy))
    assert [(claim.lang, claim.where.endswith(f"docs/{lang}/contact.md")) for claim in claims][
        -1
    ] == (lang, True)
    assert "day and night" in claims[0].sentence
    # Only the overpromising sentence, not its neighbour.
    assert all("office hours." not in claim.sentence for claim in claims)


def test_the_same_page_is_fine_when_the_team_reads_at_any_hour(demo_copy: Path) -> None:
    write_page(demo_copy, "en", OVERPROMISE["en"])
    reads(demo_copy, "always")
    assert contradicted_claims(load_profile(demo_copy)) == []


@pytest.mark.parametrize(
    "sentence",
    [
        "You can call 988 at any hour.",
        "You can use the form at any hour, day and night.",
        "If someone is in danger, call 911 right away.",
        "Our team reads reports in office hours.",
    ],
)
def test_true_sentences_are_not_flagged(demo_copy: Path, sentence: str) -> None:
    write_page(demo_copy, "en", f"# Contact\n\n{sentence}\n")
    assert contradicted_claims(load_profile(demo_copy)) == []


def test_check_fails_naming_the_sentence_and_how_to_fix_it(demo_copy: Path) -> None:
    write_page(demo_copy, "en", "# Contact\n\nWe **review** each report *right away*.\n")
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert result.exit_code == 1
    assert "1 sentence promises more than the profile configures" in result.output
    assert '"We review each report right away."' in result.output
    assert "agency.reads_reports is office_hours" in result.output
    assert "Traceback" not in result.output

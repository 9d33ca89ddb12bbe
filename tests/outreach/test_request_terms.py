"""What an agreement permits for requests for information: checked at load, shown by check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from outreach.cli import main
from outreach.loader import ProfileError, load_profile
from tests.conftest import edit_yaml

TERMS: dict[str, Any] = {
    "bases": [{"id": "ferpa-health-safety", "title": {"en": "FERPA emergency"}}],
    "fields": ["people"],
    "answers": [{"id": "attendance", "title": "Attendance"}],
}


def test_check_prints_per_agreement_the_requests_it_permits() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    lines = result.output.split("Requests for information", 1)[1].splitlines()
    assert "  HC-ISA-01 (harbor-schools): under FERPA: disclosure in a health or safety" in (
        "\n".join(lines)
    )
    school = lines.index(next(line for line in lines if "(harbor-schools)" in line))
    assert lines[school + 1] == "      a request may carry: location, when, people"
    assert lines[school + 2].startswith(
        "      the partner may answer with: Earlier incidents and discipline; Earlier threat"
    )
    assert "  HC-ISA-06 (business-network): none" in lines
    assert not any("intake-team" in line for line in lines)


def test_the_demo_school_district_asks_under_a_health_or_safety_basis() -> None:
    terms = load_profile().profile.partner("harbor-schools").agreement.requests
    assert terms is not None and [basis.id for basis in terms.bases] == ["ferpa-health-safety"]
    assert load_profile().profile.partner("business-network").agreement.requests is None


@pytest.mark.parametrize(
    ("partner", "change", "problem"),
    [
        (
            "business-network",
            {**TERMS, "fields": ["people"]},
            "partners[6].agreement.requests.fields[0]: 'people' is not among the agreement's"
            " fields",
        ),
        (
            "intake-team",
            TERMS,
            "partners[0].agreement.requests: the intake team asks the partners; it is not asked",
        ),
        (
            "harbor-schools",
            {**TERMS, "bases": TERMS["bases"] * 2},
            "partners[1].agreement.requests.bases[1].id: 'ferpa-health-safety' is used twice",
        ),
        (
            "harbor-schools",
            {**TERMS, "answers": []},
            "partners[1].agreement.requests.answers: List should have at least 1 item",
        ),
        (
            "harbor-schools",
            {**TERMS, "bases": [{"id": "x", "title": {"fr": "urgence"}}]},
            "partners[1].agreement.requests.bases[0].title.fr: 'fr' is not one of the profile's",
        ),
    ],
)
def test_request_terms_are_checked(
    demo_copy: Path, partner: str, change: dict[str, Any], problem: str
) -> None:
    def edit(data: dict[str, Any]) -> None:
        for item in data["partners"]:
            if item["id"] == partner:
                item["agreement"]["requests"] = change

    edit_yaml(demo_copy / "agency.yml", edit)
    with pytest.raises(ProfileError) as raised:
        load_profile(demo_copy)
    assert any(problem in line for line in raised.value.problems), raised.value.problems

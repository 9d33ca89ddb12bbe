"""The agency profile loader: every problem at once, each naming the file and key path."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from outreach.loader import ProfileError, display_path, load_profile
from outreach.profile import _onion_url
from tests.conftest import edit_yaml


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load_profile(folder)
    return caught.value.problems


def test_demo_profile_loads(demo: Any) -> None:
    profile = demo.profile
    assert profile.languages == ["en", "es"]
    assert len(profile.areas) >= 3
    assert len(profile.partners) >= 6
    kinds = {p.kind.value for p in profile.partners}
    assert {"k12_school", "college", "mental_health", "law_enforcement"} <= kinds
    assert {"public_venue", "critical_infrastructure"} <= kinds
    agreements = {tuple(p.agreement.fields) for p in profile.partners}
    assert len(agreements) >= 3, "sharing agreements should differ between partners"


def test_demo_uses_only_fictional_contacts(demo: Any) -> None:
    text = demo.path.read_text(encoding="utf-8")
    import re

    for phone in re.findall(r"\(\d{3}\) \d{3}-\d{4}", text):
        assert phone.endswith(tuple(f"555-01{n:02d}" for n in range(100))), phone
    for domain in re.findall(r"[\w.-]+\.(?:org|com|edu|net)\b", text):
        assert (
            "example" in domain
            or domain
            in {
                "988lifeline.org",
                "crisistextline.org",
                "thehotline.org",
                "childhelphotline.org",
                "samhsa.gov",
            }
            or domain.endswith(("crisistextline.org", "thehotline.org", "childhelphotline.org"))
        ), domain


def test_every_problem_is_reported_in_one_run(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["partners"][2]["delivery"]["channel"] = "email"
        data["partners"][2]["delivery"]["email"] = {
            "to": ["not-an-address"],
            "smtp_host": "mail.example.org",
            "sender": "tips@example.org",
        }
        del data["partners"][2]["delivery"]["maildir"]
        data["agency"]["colour"] = "#ffffff"
        data["retention"]["days"] = 0
        data["partners"][1]["delivery"]["webhook"] = None

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    shown = "agencies/demo/agency.yml"
    assert any(
        p.endswith(f"{shown}: partners[2].delivery.email.to[0]: not an e-mail address")
        for p in problems
    ), problems
    assert any(
        p.endswith(f"{shown}: agency.colour: unknown key (check the spelling against the profile")
        or "agency.colour: unknown key" in p
        for p in problems
    ), problems
    assert any("retention.days" in p for p in problems), problems
    assert len(problems) >= 3


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["languages"].append("xx"),
            "languages[2]: 'xx' is not an ISO 639 language code",
        ),
        (
            lambda d: d["routing"]["rules"][0]["send_to"].append("nobody"),
            "routing.rules[0].send_to[1]: no partner has the id 'nobody'",
        ),
        (
            lambda d: d["routing"].update(intake="ghost"),
            "routing.intake: no partner has the id 'ghost'",
        ),
        (
            lambda d: d["partners"][1]["delivery"].update(language="fr"),
            "partners[1].delivery.language: 'fr' is not a profile language",
        ),
        (
            lambda d: d["partners"][3]["delivery"]["maildir"].update(folder="../../etc"),
            "partners[3].delivery.maildir.folder: use lowercase letters",
        ),
        (
            lambda d: d["agency"].update(name={"es": "Solo español"}),
            "agency.name: needs a text in the default language 'en'",
        ),
        (
            lambda d: d["agency"].update(name={"en": "A", "es": "B", "fr": "C"}),
            "agency.name.fr: 'fr' is not one of the profile's languages",
        ),
        (
            lambda d: d["agency"].update(name=["a list"]),
            "agency.name: must be a text, or one text per language code",
        ),
        (
            lambda d: d["areas"].append({"id": "north", "name": "Again"}),
            "areas[3].id: 'north' is used twice",
        ),
        (
            lambda d: d["areas"].append({"id": "unknown", "name": "?"}),
            "areas[3].id: 'unknown' is reserved",
        ),
        (lambda d: d["agency"].update(logo="missing.svg"), "agency.logo: no file 'missing.svg'"),
        (
            lambda d: d["archive"].update(age_recipients=["AGE-SECRET-KEY-1XYZ"]),
            "archive.age_recipients: not an age public key",
        ),
        (
            lambda d: d["partners"][0]["agreement"].update(fields=["description"]),
            "routing.intake: the intake team must receive every field",
        ),
        (
            lambda d: d["partners"][1]["delivery"].update(channel="webhook"),
            "partners[1].delivery.webhook: required when channel is 'webhook'",
        ),
        (
            lambda d: d["partners"][1].update(
                delivery={
                    "channel": "webhook",
                    "webhook": {"url": "http://hooks.example.org/r", "secret_env": "HOOK"},
                }
            ),
            "partners[1].delivery.webhook.url: must start with https://",
        ),
        (
            lambda d: d["escalation"]["contacts"].append(
                {
                    "channel": "webhook",
                    "webhook": {"url": "http://10.0.0.8/page", "secret_env": "PAGER"},
                }
            ),
            "escalation.contacts[2].webhook.url: must start with https://",
        ),
        (
            lambda d: d["agency"].update(primary_color=123456),
            'agency.primary_color: must be a colour in quotes, like "#1f4e79"',
        ),
        (
            lambda d: d["crisis_lines"][0].update(hours={"en": "CHANGE-ME", "es": "24 horas"}),
            "crisis_lines[0].hours.en: still the placeholder 'CHANGE-ME'",
        ),
        (
            lambda d: d["routing"]["rules"][0]["match"].update(settings=["spaceship"]),
            "routing.rules[0].match.settings[0]: Input should be",
        ),
        (
            lambda d: d["partners"][2]["delivery"].update(
                channel="email",
                email={
                    "to": ["a@example.org"],
                    "smtp_host": "h",
                    "sender": "s@example.org",
                    "password_env": "hunter2 secret",
                },
            ),
            "password_env: must be the NAME of an environment variable",
        ),
    ],
)
def test_each_problem_names_its_key(demo_copy: Path, change: Any, expected: str) -> None:
    edit_yaml(demo_copy / "agency.yml", change)
    problems = problems_of(demo_copy)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("agencies/demo/agency.yml: ") or "agency.yml: " in p for p in problems)


def test_routing_gap_is_an_error(demo_copy: Path) -> None:
    def drop_intake(data: dict[str, Any]) -> None:
        data["routing"].pop("intake")

    edit_yaml(demo_copy / "agency.yml", drop_intake)
    (problem,) = problems_of(demo_copy)
    assert "routing: " in problem and "reach nobody" in problem
    assert "area '" in problem and "setting '" in problem and "concern '" in problem


def test_rules_alone_may_cover_every_report(demo_copy: Path) -> None:
    def catch_all(data: dict[str, Any]) -> None:
        data["routing"].pop("intake")
        data["routing"]["rules"].append({"id": "everything", "send_to": ["sheriff-tau"]})

    edit_yaml(demo_copy / "agency.yml", catch_all)
    assert load_profile(demo_copy).profile.routing.intake is None


def test_duplicate_yaml_key_is_an_error(demo_copy: Path) -> None:
    path = demo_copy / "agency.yml"
    path.write_text(path.read_text(encoding="utf-8") + "\nlanguages: [en]\n", encoding="utf-8")
    (problem,) = problems_of(demo_copy)
    assert "duplicate key 'languages'" in problem and "line " in problem


def test_yaml_syntax_error_names_the_line(demo_copy: Path) -> None:
    (demo_copy / "agency.yml").write_text("agency:\n  name: [unclosed\n", encoding="utf-8")
    (problem,) = problems_of(demo_copy)
    assert (
        problem.startswith(str(Path("agencies/demo/agency.yml"))) or "agency.yml: line" in problem
    )


def test_missing_profile(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path)
    assert "no agency profile here" in problem


def test_profile_file_path_is_accepted(demo_copy: Path) -> None:
    assert load_profile(demo_copy / "agency.yml").agency_id == "demo"


@pytest.mark.parametrize(
    "address",
    [
        "https://example.org/",
        "http://short.onion/",
        "http://" + "a" * 56 + ".onion/report",
        "ftp://" + "a" * 56 + ".onion/",
    ],
)
def test_an_onion_address_must_be_an_onion_services_root(address: str) -> None:
    with pytest.raises(ValueError, match="onion"):
        _onion_url(address)


def test_an_onion_address_is_kept_as_its_root() -> None:
    assert _onion_url("http://" + "a" * 56 + ".onion") == "http://" + "a" * 56 + ".onion/"


def test_an_unquoted_colour_is_explained(demo_copy: Path) -> None:
    path = demo_copy / "agency.yml"
    text, count = re.subn(r"primary_color: .*", "primary_color: #1f4e79", path.read_text("utf-8"))
    assert count == 1
    path.write_text(text, encoding="utf-8")
    (problem,) = problems_of(demo_copy)
    assert problem.endswith(
        'agency.primary_color: must be a colour in quotes, like "#1f4e79": without the '
        "quotes, YAML reads everything from # on as a comment"
    )
    assert "valid string" not in problem


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://127.8.9.10/hook",
        "http://[::1]:9000/",
        "http://localhost/h",
    ],
)
def test_a_plain_http_webhook_may_only_reach_this_machine(demo_copy: Path, url: str) -> None:
    def webhook(data: dict[str, Any]) -> None:
        data["partners"][1]["delivery"] = {
            "channel": "webhook",
            "webhook": {"url": url, "secret_env": "HOOK"},
        }

    edit_yaml(demo_copy / "agency.yml", webhook)
    assert load_profile(demo_copy).profile.partners[1].delivery.webhook is not None


def test_schema_errors_do_not_hide_references_files_placeholders_or_meaning(
    demo_copy: Path,
) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["retention"]["days"] = 0
        data["partners"][4]["kind"] = "wizard"
        data["partners"][2]["areas"] = ["west"]
        data["routing"]["rules"][1]["match"]["areas"] = ["nowhere"]
        data["routing"]["intake"] = "intake-tema"
        data["agency"]["logo"] = "logo.png"
        data["agency"]["liaison"]["name"] = "CHANGE-ME liaison"
        data["partners"][1]["delivery"]["channel"] = "webhook"
        data["areas"][0]["name"] = {"es": "Norte"}

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = [p.split("agency.yml: ", 1)[1] for p in problems_of(demo_copy)]
    assert problems[:2] == [
        "partners[4].kind: Input should be 'k12_school', 'college', 'mental_health', "
        "'law_enforcement', 'threat_assessment', 'intake', 'workplace', 'public_venue', "
        "'critical_infrastructure', 'community' or 'social_services'",
        "retention.days: Input should be greater than or equal to 1",
    ]
    assert set(problems[2:]) == {
        "partners[2].areas[0]: unknown area 'west'",
        "routing.intake: no partner has the id 'intake-tema'",
        "routing.rules[1].match.areas[0]: unknown area 'nowhere'",
        f"agency.logo: no file 'logo.png' in {display_path(demo_copy)}",
        "agency.liaison.name: still the placeholder 'CHANGE-ME liaison'; "
        "replace it with the real value",
        "areas[0].name: needs a text in the default language 'en'",
        "partners[1].delivery.webhook: required when channel is 'webhook'",
        "partners[1].delivery.maildir: not used when channel is 'webhook'",
    }


def test_a_routing_gap_is_named_beside_schema_errors(demo_copy: Path) -> None:
    def break_it(data: dict[str, Any]) -> None:
        data["agency"]["email"] = "nobody"
        data["routing"].pop("intake")

    edit_yaml(demo_copy / "agency.yml", break_it)
    problems = problems_of(demo_copy)
    assert len(problems) == 2 and "agency.email: not an e-mail address" in problems[0]
    assert "routing: " in problems[1] and "reach nobody" in problems[1]


def test_draft_placeholders_are_warnings(new_agency: Any) -> None:
    folder = new_agency(placeholders=True)
    problems = problems_of(folder)
    assert len(problems) == 2 and all("still the placeholder 'CHANGE-ME" in p for p in problems)
    drafted = load_profile(folder, draft=True)
    assert drafted.draft
    placeholders = [w for w in drafted.warnings if "CHANGE-ME" in w]
    assert [w.split("agency.yml: ")[1].split(":")[0] for w in placeholders] == [
        "agency.address",
        "agency.liaison.name",
    ]
    assert not load_profile(new_agency("filled")).draft


def test_an_area_only_the_intake_team_hears_about_is_a_warning(new_agency: Any) -> None:
    def two_towns_one_school_district(data: dict[str, Any]) -> None:
        data["areas"] = [{"id": "upton", "name": "Upton"}, {"id": "downey", "name": "Downey"}]
        schools = {**data["partners"][0], "id": "upton-schools", "kind": "k12_school"}
        schools["delivery"] = {"channel": "maildir", "maildir": {"folder": "upton-schools"}}
        data["partners"].append(schools)
        data["routing"]["rules"] = [
            {"id": "upton", "match": {"areas": ["upton"]}, "send_to": ["upton-schools"]}
        ]

    loaded = load_profile(new_agency("valley", two_towns_one_school_district))
    (warning,) = loaded.warnings
    assert warning.endswith(
        "agency.yml: areas[1]: no partner serves area 'downey': only the intake team "
        "receives its reports (add a routing rule that sends them to a partner)"
    )


def test_display_path_is_relative_inside_the_working_directory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, elsewhere = tmp_path / "work", tmp_path / "opt" / "agency.yml"
    (inside / "agencies").mkdir(parents=True)
    monkeypatch.chdir(inside)
    assert display_path(inside / "agencies" / "agency.yml") == os.path.join(
        "agencies", "agency.yml"
    )
    assert display_path(elsewhere) == str(elsewhere)
    assert display_path(Path("../opt/agency.yml")) == str(elsewhere)

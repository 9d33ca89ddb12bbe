"""Numbers to call become links, and numbers and addresses stay left to right, on any page.

Run with the numbers of both fixture profiles (the demo and tests/fixtures/region), through
Python-Markdown with the extension as the generated MkDocs config names it.
"""

from __future__ import annotations

import pytest
from markdown import Markdown

from outreach.loader import DEMO_PROFILE, load_profile
from outreach.profile import Profile
from outreach.site.sitegen import BASE_EXTENSIONS, _number_links
from tests.conftest import REPO

PROFILES = {"demo": DEMO_PROFILE, "region": REPO / "tests" / "fixtures" / "region"}


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> Profile:
    return load_profile(PROFILES[request.param]).profile


def render(profile: Profile, text: str) -> str:
    names: list[str] = []
    configs: dict[str, dict[str, object]] = {}
    for entry in [*BASE_EXTENSIONS, _number_links(profile)]:
        if isinstance(entry, str):
            names.append(entry)
        else:
            ((name, config),) = entry.items()
            names.append(name)
            configs[name] = config or {}
    return str(Markdown(extensions=names, extension_configs=configs).convert(text))


def test_every_number_of_the_profile_is_a_tap_to_call_link(profile: Profile) -> None:
    numbers = [profile.emergency_number, profile.agency.phone, profile.agency.liaison.phone]
    numbers += [line.number for line in profile.crisis_lines if line.number]
    for number in numbers:
        digits = "".join(c for c in number if c.isdigit())
        html = render(profile, f"اتصل على {number} الآن.")
        assert f'<a class="outreach-tel" dir="ltr" href="tel:{digits}">{number}</a>' in html


def test_a_text_line_opens_messages(profile: Profile) -> None:
    for line in profile.crisis_lines:
        if line.text_number:
            html = render(profile, f"Text HOME to {line.text_number}.")
            assert f'href="sms:{"".join(c for c in line.text_number if c.isdigit())}"' in html


def test_a_number_written_in_full_is_a_link_too(profile: Profile) -> None:
    html = render(profile, "Call 1-800-799-7233 or (555) 555-0199.")
    assert 'href="tel:18007997233"' in html and 'href="tel:5555550199"' in html


@pytest.mark.parametrize(
    "text",
    [
        "In 2022–23, 2,840 of 22,486 reports were about suicide.",
        "Since 9/11 and 2,911 and 1911.",
        "`911` in code",
        "[call 911](https://example.org/)",
    ],
)
def test_other_numbers_and_links_are_left_alone(profile: Profile, text: str) -> None:
    assert "outreach-tel" not in render(profile, text)


def test_addresses_are_kept_left_to_right(profile: Profile) -> None:
    html = render(profile, f"راسلنا على {profile.agency.email} أو https://example.org/a/b.")
    assert f'<bdi dir="ltr">{profile.agency.email}</bdi>' in html
    assert '<bdi dir="ltr">https://example.org/a/b</bdi>.' in html
    linked = render(profile, f"[{profile.agency.email}](mailto:{profile.agency.email})")
    assert 'dir="ltr"' in linked


def test_a_heading_with_a_number_keeps_its_anchor(profile: Profile) -> None:
    html = render(profile, f"## Call {profile.emergency_number} first {{ #emergency }}")
    assert 'id="emergency"' in html and 'href="tel:' in html

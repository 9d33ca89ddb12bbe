"""The form says what the profile configures: when reports are read, who could see the
reporter's contact details (police named), and the crisis line beside the emergency number."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.form_service.conftest import start_client


def form_text(settings: Settings, path: str = "/report") -> str:
    with start_client(settings) as client:
        return html.unescape(client.get(path).text)


def words(page: str) -> str:
    """The page's text without its markup: a number to call is a link amid the words."""
    return re.sub(r"<[^>]+>", "", page)


def test_the_form_names_who_could_see_contact_details(settings: Settings) -> None:
    page = form_text(settings)
    consent = page.split('for="f-consent">')[1].split("</label>")[0]
    assert "Harbor Unified School District" in consent
    assert "Harbor County Sheriff's Office Threat Assessment Unit (law enforcement)" in consent
    assert "Eastwood Valley" not in consent  # its agreement does not include contact details
    spanish = form_text(settings, "/es/report")
    assert "(policía)" in spanish.split('for="f-consent">')[1].split("</label>")[0]


def test_the_form_says_when_reports_are_read(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    page = form_text(make_settings())
    assert "during office hours: Monday to Friday, 8 a.m. to 5 p.m." in page
    assert "Thinking about suicide, or in a crisis? Call 988." in words(page)
    agency = keyed_demo.profile.agency.model_copy(update={"reads_reports": "always"})
    lines = [
        line.model_copy(update={"number": "1-800-555-0199" if i == 0 else ""})
        for i, line in enumerate(keyed_demo.profile.crisis_lines)
    ]
    profile = keyed_demo.profile.model_copy(update={"agency": agency, "crisis_lines": lines})
    loaded = LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)
    page = form_text(make_settings(profile=loaded))
    assert "Our team reads reports at any hour, every day." in page
    assert "office hours" not in page
    assert "Call 1-800-555-0199." in words(page)

"""``outreach new``: a new agency profile that builds as a draft (``build --draft``) as it
is, and passes ``check`` once its ``CHANGE-ME`` values are replaced."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pyrage

from outreach.loader import PROFILE_FILE, display_path

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

_TEMPLATE = """\
# Agency profile for {title}. The reference for every key is in the agency guide
# (guide/profile.md). Replace each CHANGE-ME value, then run `outreach check`.

agency:
  name: {title} Prevention Team
  short_name: {short}
  jurisdiction: {title}
  site_url: https://{agency_id}.example.org/
  primary_color: "#1f4e79"
  phone: (555) 555-0150
  email: tips@{agency_id}.example.org
  address: CHANGE-ME office address for reporting in person
  hours: Monday to Friday, 9 a.m. to 5 p.m.
  liaison:
    name: CHANGE-ME liaison name
    phone: (555) 555-0151
    email: partners@{agency_id}.example.org

languages: [en]

areas:
  - id: whole-jurisdiction
    name: {title}

emergency_number: "911"

crisis_lines:
  - name: 988 Suicide & Crisis Lifeline
    how: Call or text 988.
    url: https://988lifeline.org/
    number: "988"
    hours: Open 24 hours, every day
  - name: Crisis Text Line
    how: Text HOME to 741741.
    url: https://www.crisistextline.org/
    hours: Open 24 hours, every day

partners:
  - id: intake-team
    name: {title} Intake Team
    kind: intake
    public:
      description: Gets every report first, reads it and decides who else should help.
    delivery:
      channel: maildir
      maildir: {{folder: intake-team}}
      # Mail in this folder rests on the server: it is encrypted to the archive key, whose
      # private half the intake team keeps. Use the team's own key here if it has one.
      age_recipient: {recipient}
    agreement:
      id: ISA-00
      title: Intake and triage of all reports
      fields: [description, location, setting, concern, when, people, danger_now, contact]
      contact_requires_consent: false

routing:
  intake: intake-team
  rules: []

retention:
  days: 365

archive:
  # Reports are stored encrypted to this key. Its private half was printed once by
  # `outreach new`; keep it off the server.
  age_recipients:
    - {recipient}
"""


class ScaffoldError(Exception):
    pass


def scaffold_agency(root: Path, agency_id: str) -> Path:
    """Write agencies/<agency_id>/agency.yml under *root*; return the folder."""
    if not _ID.match(agency_id):
        raise ScaffoldError(
            f"'{agency_id}' cannot be an agency id: use lowercase letters, digits and hyphens."
        )
    folder = root / "agencies" / agency_id
    if folder.exists():
        raise ScaffoldError(f"{display_path(folder)} already exists; choose another id.")
    identity = pyrage.x25519.Identity.generate()
    title = " ".join(part.capitalize() for part in agency_id.split("-"))
    short = "".join(part[0] for part in agency_id.split("-")).upper()
    folder.mkdir(parents=True)
    (folder / "docs" / "en").mkdir(parents=True)
    (folder / PROFILE_FILE).write_text(
        _TEMPLATE.format(
            title=title, short=short, agency_id=agency_id, recipient=identity.to_public()
        ),
        encoding="utf-8",
    )
    (folder / "docs" / "en" / ".keep").write_text("", encoding="utf-8")
    archive_secret = str(identity)
    click.echo(
        "Archive private key (shown once; store it offline, never on the report server):\n"
        f"  {archive_secret}",
        err=True,
    )
    return folder

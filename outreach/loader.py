"""Load an agency profile and report every problem in it at once.

Each problem names the file and the key path (``partners[2].delivery.email.to``), the way
a reviewer would point at it, and loading fails only after all of them are collected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from outreach.assets import demo_profile
from outreach.languages import is_valid_language
from outreach.profile import (
    UNKNOWN_AREA,
    DeliveryConfig,
    Partner,
    Profile,
    ReportField,
    StaffNotices,
)
from outreach.routing import routing_gaps

PROFILE_FILE = "agency.yml"
DEMO_PROFILE = demo_profile()


class ProfileError(Exception):
    """A profile that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in the agency profile:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class LoadedProfile:
    """A valid profile and the folder it came from (overrides, logo, …)."""

    profile: Profile
    folder: Path
    path: Path

    @property
    def agency_id(self) -> str:
        return self.folder.name


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def resolve_profile_path(location: str | os.PathLike[str] | None) -> Path:
    """The agency.yml for a profile folder or file; the demo agency when none is given."""
    path = Path(location) if location else DEMO_PROFILE
    if path.is_dir():
        path = path / PROFILE_FILE
    return path


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"str", "dict[str,str]"} or "[" in part or part.startswith("function-"):
            # Pydantic names the union member it tried; the reader only needs the key.
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _structure_problems(error: ValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the profile reference)"
        elif item["type"] == "missing":
            message = "required key is missing"
        line = f"{_key_path(item['loc'])}: {message}"
        if line not in problems:
            problems.append(line)
    return problems


def _localized_texts(value: Any, path: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Every per-language text in a parsed profile, with its key path.

    The schema's only string-to-string mappings are localized texts, so any such mapping
    inside a model is one.
    """
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _localized_texts(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, dict):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _localized_texts(item, f"{path}[{index}]")


def _meaning_problems(profile: Profile, folder: Path) -> list[str]:
    problems: list[str] = []
    languages = profile.languages
    for path, texts in _localized_texts(profile, ""):
        for code in texts:
            if code not in languages:
                problems.append(f"{path}.{code}: '{code}' is not one of the profile's languages")
        if profile.default_language not in texts:
            problems.append(
                f"{path}: needs a text in the default language '{profile.default_language}'"
            )

    area_ids = set(profile.area_ids())
    partner_ids = {partner.id for partner in profile.partners}
    for index, partner in enumerate(profile.partners):
        problems += _partner_problems(index, partner, area_ids, languages)
        problems += _request_problems(index, partner, profile.routing.intake)

    intake = profile.routing.intake
    if intake is not None:
        if intake not in partner_ids:
            problems.append(f"routing.intake: no partner has the id '{intake}'")
        else:
            agreement = profile.partner(intake).agreement
            missing = [f.value for f in ReportField if f not in agreement.fields]
            if missing:
                problems.append(
                    f"routing.intake: the intake team must receive every field; its agreement "
                    f"'{agreement.id}' leaves out {', '.join(missing)}"
                )
    for index, rule in enumerate(profile.routing.rules):
        for j, partner_id in enumerate(rule.send_to):
            if partner_id not in partner_ids:
                problems.append(
                    f"routing.rules[{index}].send_to[{j}]: no partner has the id '{partner_id}'"
                )
        for j, area in enumerate(rule.match.areas):
            if area not in area_ids and area != UNKNOWN_AREA:
                problems.append(f"routing.rules[{index}].match.areas[{j}]: unknown area '{area}'")

    problems += _escalation_problems(profile)
    if profile.staff_notices is not None:
        problems += _delivery_problems("staff_notices", profile.staff_notices, profile.languages)

    if profile.agency.logo and not (folder / profile.agency.logo).is_file():
        problems.append(f"agency.logo: no file '{profile.agency.logo}' in {display_path(folder)}")

    return problems


def _routing_gap_problems(profile: Profile) -> list[str]:
    """A routing gap, checked last: it is only meaningful once every reference resolves."""
    gaps = routing_gaps(profile)
    if not gaps:
        return []
    first = gaps[0]
    danger = "someone in danger now" if first.danger_now else "no one in danger now"
    return [
        f"routing: {len(gaps)} kinds of report reach nobody, e.g. area '{first.area}', "
        f"setting '{first.setting.value}', concern '{first.concern.value}', {danger}; "
        "set routing.intake or add a rule that covers them"
    ]


def _raw_problems(raw: dict[str, Any]) -> list[str]:
    """Checks that need no valid structure, so they are reported beside structural ones."""
    problems: list[str] = []
    languages = raw.get("languages")
    if isinstance(languages, list):
        for index, code in enumerate(languages):
            if isinstance(code, str) and not is_valid_language(code):
                problems.append(f"languages[{index}]: '{code}' is not an ISO 639 language code")
        if len(set(map(str, languages))) != len(languages):
            problems.append("languages: a language is listed twice")
    routing = raw.get("routing")
    rules = routing.get("rules") if isinstance(routing, dict) else None
    for key, items in (("areas", raw.get("areas")), ("partners", raw.get("partners"))):
        problems += _duplicates(key, _ids(items))
    problems += _duplicates("routing.rules", _ids(rules))
    return problems


def _ids(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(item.get("id")) if isinstance(item, dict) else "" for item in items]


def _duplicates(key: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, item in enumerate(ids):
        if item and item in seen:
            problems.append(f"{key}[{index}].id: '{item}' is used twice")
        seen.add(item)
    return problems


def _partner_problems(
    index: int, partner: Any, area_ids: set[str], languages: list[str]
) -> list[str]:
    problems = []
    where = f"partners[{index}]"
    for j, area in enumerate(partner.areas):
        if area not in area_ids:
            problems.append(f"{where}.areas[{j}]: unknown area '{area}'")
    return problems + _delivery_problems(f"{where}.delivery", partner.delivery, languages)


def _request_problems(index: int, partner: Partner, intake: str | None) -> list[str]:
    terms = partner.agreement.requests
    if terms is None:
        return []
    where = f"partners[{index}].agreement.requests"
    if partner.id == intake:
        return [f"{where}: the intake team asks the partners; it is not asked itself"]
    problems = [
        f"{where}.fields[{j}]: '{field.value}' is not among the agreement's fields"
        for j, field in enumerate(terms.fields)
        if field not in partner.agreement.fields
    ]
    problems += _duplicates(f"{where}.bases", [basis.id for basis in terms.bases])
    problems += _duplicates(f"{where}.answers", [category.id for category in terms.answers])
    return problems


def _delivery_problems(
    where: str, delivery: DeliveryConfig | StaffNotices, languages: list[str]
) -> list[str]:
    problems = []
    for channel in ("email", "webhook", "maildir"):
        present = getattr(delivery, channel, None) is not None
        if channel == delivery.channel and not present:
            problems.append(f"{where}.{channel}: required when channel is '{channel}'")
        elif channel != delivery.channel and present:
            problems.append(f"{where}.{channel}: not used when channel is '{delivery.channel}'")
    if delivery.language is not None and delivery.language not in languages:
        problems.append(f"{where}.language: '{delivery.language}' is not a profile language")
    return problems


def _escalation_problems(profile: Profile) -> list[str]:
    if profile.escalation is None:
        return []
    problems = []
    for index, contact in enumerate(profile.escalation.contacts):
        where = f"escalation.contacts[{index}]"
        problems += _delivery_problems(where, contact, profile.languages)
        if contact.age_recipient is not None:
            problems.append(f"{where}.age_recipient: not used; a notice carries no report content")
    return problems


def load_profile(location: str | os.PathLike[str] | None = None) -> LoadedProfile:
    """Load and check a profile; raise ProfileError listing every problem found."""
    path = resolve_profile_path(location)
    shown = display_path(path)
    if not path.is_file():
        raise ProfileError(
            [f"{shown}: no agency profile here (expected a folder with {PROFILE_FILE})"]
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except UnicodeDecodeError:
        raise ProfileError([f"{shown}: not UTF-8 text"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileError([f"{shown}: {where}{problem}"]) from None
    if not isinstance(raw, dict):
        raise ProfileError([f"{shown}: must be a mapping of keys (agency:, languages:, …)"])
    problems = _raw_problems(raw)
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as error:
        problems = _structure_problems(error) + problems
        raise ProfileError([f"{shown}: {p}" for p in problems]) from None
    problems += _meaning_problems(profile, path.parent)
    if not problems:
        problems = _routing_gap_problems(profile)
    if problems:
        raise ProfileError([f"{shown}: {p}" for p in problems])
    return LoadedProfile(profile=profile, folder=path.parent.resolve(), path=path.resolve())

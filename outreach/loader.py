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
from pydantic import BaseModel, TypeAdapter, ValidationError

from outreach.assets import demo_profile
from outreach.languages import is_valid_language
from outreach.profile import (
    DeliveryConfig,
    Escalation,
    Partner,
    Profile,
    ReportField,
    Routing,
    StaffNotices,
)
from outreach.raw_profile import (
    file_problems,
    list_entries,
    placeholder_problems,
    reference_problems,
    routing_findings,
)

PROFILE_FILE = "agency.yml"
DEMO_PROFILE = demo_profile()


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class ProfileError(Exception):
    """A profile that cannot be used; ``problems`` holds one line per problem, ``warnings``
    what would not stop it but deserves a look."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        message = f"{_counted(len(problems), 'problem')} in the agency profile:\n  "
        message += "\n  ".join(problems)
        if self.warnings:
            message += f"\n{_counted(len(self.warnings), 'warning')}:\n  "
            message += "\n  ".join(self.warnings)
        super().__init__(message)


@dataclass(frozen=True)
class LoadedProfile:
    """A valid profile and the folder it came from (overrides, logo, …)."""

    profile: Profile
    folder: Path
    path: Path
    warnings: tuple[str, ...] = ()
    """Lines naming what does not stop the profile but deserves a look (file: key: text)."""
    draft: bool = False
    """Loaded for a draft build: its placeholders are warnings, and every page says draft."""

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
    """A path as the user would type it: relative to the working directory when inside it,
    else absolute (never ``../../opt/…``, which says nothing once the directory changes)."""
    absolute = Path(os.path.abspath(path))
    if absolute.is_relative_to(Path.cwd()):
        return os.path.relpath(absolute)
    return str(absolute)


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


@dataclass(frozen=True)
class _Parts:
    """The sections of a profile, and each partner, that fit the schema on their own: the
    checks of meaning run on them, so one bad section does not hide mistakes in another."""

    sections: dict[str, Any]
    partners: list[tuple[int, Partner]]

    @property
    def languages(self) -> list[str] | None:
        languages = self.sections.get("languages")
        return languages if isinstance(languages, list) and languages else None

    @property
    def intake(self) -> str | None:
        routing = self.sections.get("routing")
        return routing.intake if isinstance(routing, Routing) else None


_SECTIONS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(field.annotation)
    for name, field in Profile.model_fields.items()
    if field.annotation is not None
}


def _parts(raw: dict[str, Any]) -> _Parts:
    sections: dict[str, Any] = {}
    for name, adapter in _SECTIONS.items():
        if name != "partners" and name in raw:
            try:
                sections[name] = adapter.validate_python(raw[name])
            except ValidationError:
                continue
    partners = []
    for index, item in list_entries(raw.get("partners")):
        try:
            partners.append((index, Partner.model_validate(item)))
        except ValidationError:
            continue
    return _Parts(sections, partners)


def _text_problems(parts: _Parts, languages: list[str]) -> list[str]:
    problems: list[str] = []
    default = languages[0]
    found: list[tuple[str, Any]] = []
    for name in _SECTIONS:
        if name == "partners":
            found += [(f"partners[{index}]", partner) for index, partner in parts.partners]
        elif name in parts.sections:
            found.append((name, parts.sections[name]))
    for where, value in found:
        for path, texts in _localized_texts(value, where):
            for code in texts:
                if code not in languages:
                    problems.append(
                        f"{path}.{code}: '{code}' is not one of the profile's languages"
                    )
            if default not in texts:
                problems.append(f"{path}: needs a text in the default language '{default}'")
    return problems


def _meaning_problems(parts: _Parts) -> list[str]:
    # References between sections (partner and area ids) and the logo file are checked
    # on the parsed YAML (outreach.raw_profile).
    languages = parts.languages
    problems = _text_problems(parts, languages) if languages else []
    intake = parts.intake
    for index, partner in parts.partners:
        problems += _delivery_problems(f"partners[{index}].delivery", partner.delivery, languages)
        problems += _request_problems(index, partner, intake)
        if partner.id == intake:
            missing = [f.value for f in ReportField if f not in partner.agreement.fields]
            if missing:
                problems.append(
                    f"routing.intake: the intake team must receive every field; its agreement "
                    f"'{partner.agreement.id}' leaves out {', '.join(missing)}"
                )
    escalation = parts.sections.get("escalation")
    if isinstance(escalation, Escalation):
        problems += _escalation_problems(escalation, languages)
    notices = parts.sections.get("staff_notices")
    if isinstance(notices, StaffNotices):
        problems += _delivery_problems("staff_notices", notices, languages)
    return problems


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
    where: str, delivery: DeliveryConfig | StaffNotices, languages: list[str] | None
) -> list[str]:
    problems = []
    for channel in ("email", "webhook", "maildir"):
        present = getattr(delivery, channel, None) is not None
        if channel == delivery.channel and not present:
            problems.append(f"{where}.{channel}: required when channel is '{channel}'")
        elif channel != delivery.channel and present:
            problems.append(f"{where}.{channel}: not used when channel is '{delivery.channel}'")
    language = delivery.language
    if languages is not None and language is not None and language not in languages:
        problems.append(f"{where}.language: '{language}' is not a profile language")
    return problems


def _escalation_problems(escalation: Escalation, languages: list[str] | None) -> list[str]:
    problems = []
    for index, contact in enumerate(escalation.contacts):
        where = f"escalation.contacts[{index}]"
        problems += _delivery_problems(where, contact, languages)
        if contact.age_recipient is not None:
            problems.append(f"{where}.age_recipient: not used; a notice carries no report content")
    return problems


def load_profile(
    location: str | os.PathLike[str] | None = None, *, draft: bool = False
) -> LoadedProfile:
    """Load and check a profile; raise ProfileError listing every problem found.

    *draft*: ``CHANGE-ME`` placeholders are warnings instead of problems (``build --draft``).
    """
    path = resolve_profile_path(location)
    shown = display_path(path)
    raw = _read_yaml(path, shown)
    problems, warnings = _raw_findings(raw, path.parent, draft)
    profile: Profile | None = None
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as error:
        problems = _structure_problems(error) + problems
    warnings = [f"{shown}: {w}" for w in warnings]
    if problems or profile is None:
        raise ProfileError([f"{shown}: {p}" for p in problems], warnings)
    profile.read_interface_strings_from(path.parent.resolve() / "locale")
    return LoadedProfile(
        profile=profile,
        folder=path.parent.resolve(),
        path=path.resolve(),
        warnings=tuple(warnings),
        draft=draft,
    )


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
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
    return raw


def _raw_findings(raw: dict[str, Any], folder: Path, draft: bool) -> tuple[list[str], list[str]]:
    """Problems and warnings found on the parsed YAML, valid against the schema or not."""
    problems = _raw_problems(raw) + reference_problems(raw)
    problems += file_problems(raw, folder, display_path(folder))
    problems += _meaning_problems(_parts(raw))
    routing_problems, warnings = routing_findings(raw)
    placeholders = placeholder_problems(raw)
    if draft:
        warnings = placeholders + warnings
    else:
        problems += placeholders
    return problems + routing_problems, warnings

"""Checks on a profile as parsed from YAML, whether or not it fits the schema.

A schema error in one part of a profile must not hide a mistake in another: references
between sections, files the profile names, placeholders left from ``outreach new`` and
routing are checked on the parsed YAML, so ``check`` names them in the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from outreach.profile import UNKNOWN_AREA, Routing
from outreach.routing import routing_gaps, unserved_areas

PLACEHOLDER = "CHANGE-ME"


def list_entries(value: Any) -> list[tuple[int, dict[str, Any]]]:
    """The mapping entries of a list section, with their index; nothing if it is no list."""
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def _ids(value: Any) -> list[str]:
    return [item["id"] for _, item in list_entries(value) if isinstance(item.get("id"), str)]


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def reference_problems(raw: dict[str, Any]) -> list[str]:
    """Every id that names a partner or an area the profile does not have."""
    partner_ids = set(_ids(raw.get("partners")))
    area_ids = set(_ids(raw.get("areas")))
    problems = []
    for index, partner in list_entries(raw.get("partners")):
        for j, area in enumerate(_strings(partner.get("areas"))):
            if area not in area_ids:
                problems.append(f"partners[{index}].areas[{j}]: unknown area '{area}'")
    routing = _mapping(raw.get("routing"))
    intake = routing.get("intake")
    if isinstance(intake, str) and intake not in partner_ids:
        problems.append(f"routing.intake: no partner has the id '{intake}'")
    for index, rule in list_entries(routing.get("rules")):
        where = f"routing.rules[{index}]"
        for j, partner_id in enumerate(_strings(rule.get("send_to"))):
            if partner_id not in partner_ids:
                problems.append(f"{where}.send_to[{j}]: no partner has the id '{partner_id}'")
        for j, area in enumerate(_strings(_mapping(rule.get("match")).get("areas"))):
            if area not in area_ids and area != UNKNOWN_AREA:
                problems.append(f"{where}.match.areas[{j}]: unknown area '{area}'")
    return problems


def file_problems(raw: dict[str, Any], folder: Path, shown_folder: str) -> list[str]:
    """Files the profile names that are not in its folder."""
    logo = _mapping(raw.get("agency")).get("logo")
    if isinstance(logo, str) and logo and not (folder / logo).is_file():
        return [f"agency.logo: no file '{logo}' in {shown_folder}"]
    return []


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def placeholder_problems(raw: dict[str, Any]) -> list[str]:
    """Every value still holding a ``CHANGE-ME`` placeholder from ``outreach new``."""
    return [
        f"{path}: still the placeholder '{text}'; replace it with the real value"
        for path, text in _texts(raw, "")
        if PLACEHOLDER in text
    ]


def routing_findings(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Routing problems (kinds of report that reach nobody) and warnings (areas no partner
    serves), from the routing and areas sections alone; their own schema errors are
    reported elsewhere."""
    areas = raw.get("areas")
    area_ids = _ids(areas)
    try:
        routing = Routing.model_validate(raw.get("routing"))
    except ValidationError:
        return [], []
    if not area_ids:
        return [], []
    problems = []
    gaps = routing_gaps(routing, area_ids)
    if gaps:
        first = gaps[0]
        danger = "someone in danger now" if first.danger_now else "no one in danger now"
        problems.append(
            f"routing: {len(gaps)} kinds of report reach nobody, e.g. area '{first.area}', "
            f"setting '{first.setting.value}', concern '{first.concern.value}', {danger}; "
            "set routing.intake or add a rule that covers them"
        )
    index = {item.get("id"): i for i, item in reversed(list_entries(areas))}
    warnings = [
        f"areas[{index[area]}]: no partner serves area '{area}': only the intake team "
        "receives its reports (add a routing rule that sends them to a partner)"
        for area in unserved_areas(routing, area_ids)
    ]
    return problems, warnings

"""The profile reference (guide/profile.md) documents every key of the schema, and no others.

The key paths come from walking the pydantic models of outreach/profile.py, so a field
added to the schema fails here until the reference describes it.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from outreach.loader import load_profile
from outreach.profile import (
    Concern,
    DeliveryConfig,
    EmailDelivery,
    Partner,
    PartnerKind,
    Profile,
    ReportField,
    Setting,
)
from outreach.site.page_context import SiteLinks, page_context
from tests.guide.guide_text import GUIDE, blocks

REFERENCE = GUIDE / "profile.md"
PAGES_GUIDE = GUIDE / "pages.md"


def _nested_models(annotation: Any, in_list: bool = False) -> list[tuple[type[BaseModel], bool]]:
    """The models inside a field's type, each with whether it sits in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, in_list)]
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        return [found for arg in args for found in _nested_models(arg, in_list=True)]
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [found for arg in args for found in _nested_models(arg, in_list)]
    return []


def key_paths(model: type[BaseModel] = Profile, prefix: str = "") -> list[str]:
    """Every key path of the schema: agency.liaison.email, partners[].delivery.email.to, …"""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        paths.append(path)
        for nested, in_list in _nested_models(field.annotation):
            paths += key_paths(nested, path + ("[]" if in_list else ""))
    return list(dict.fromkeys(paths))


def test_the_walk_finds_nested_keys() -> None:
    paths = key_paths()
    assert "agency.liaison.email" in paths
    assert "partners[].delivery.email.password_env" in paths
    assert "routing.rules[].match.danger_now" in paths
    assert "site.nav[].section" in paths
    assert len(paths) > 60


def test_every_schema_key_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [path for path in key_paths() if f"`{path}`" not in text]
    assert not missing, f"guide/profile.md does not describe: {', '.join(missing)}"


def _documented_keys() -> list[str]:
    """The first cell of every row of the reference's "Key" tables."""
    keys = []
    in_key_table = False
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| Key |"):
            in_key_table = True
        elif not line.startswith("|"):
            in_key_table = False
        elif in_key_table:
            match = re.match(r"\| `([^`]+)` \|", line)
            if match:
                keys.append(match.group(1))
    return keys


def test_the_reference_describes_no_key_the_schema_lacks() -> None:
    documented = _documented_keys()
    assert len(documented) > 60
    unknown = sorted(set(documented) - set(key_paths()))
    assert not unknown, f"guide/profile.md describes keys the schema does not have: {unknown}"


def _literal_values(model: type[BaseModel], name: str) -> list[str]:
    annotation = model.model_fields[name].annotation
    assert get_origin(annotation) is Literal
    return [str(value) for value in get_args(annotation)]


@pytest.mark.parametrize(
    "values",
    [
        [kind.value for kind in PartnerKind],
        [setting.value for setting in Setting],
        [concern.value for concern in Concern],
        [field.value for field in ReportField],
        _literal_values(DeliveryConfig, "channel"),
        _literal_values(EmailDelivery, "security"),
    ],
    ids=["partner kinds", "settings", "concerns", "report fields", "channels", "security"],
)
def test_every_allowed_value_is_in_the_reference(values: list[str]) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [value for value in values if f"`{value}`" not in text]
    assert not missing, f"guide/profile.md does not list: {missing}"


def yaml_blocks(page: Path) -> list[str]:
    return [block.text for block in blocks(page) if block.info == "yaml"]


def test_the_reference_examples_make_one_valid_profile(tmp_path: Path) -> None:
    examples = yaml_blocks(REFERENCE)
    (tmp_path / "agency.yml").write_text("\n".join(examples), encoding="utf-8")
    loaded = load_profile(tmp_path)
    used = set(yaml.safe_load((tmp_path / "agency.yml").read_text(encoding="utf-8")))
    assert used == set(Profile.model_fields), "the examples should show every top-level key"
    assert loaded.profile.routing.intake == "intake-team"


def test_every_guide_yaml_block_parses_and_partners_are_valid() -> None:
    for page in sorted(GUIDE.glob("*.md")):
        for text in yaml_blocks(page):
            data = yaml.safe_load(text)
            if isinstance(data, dict):
                for partner in data.get("partners") or []:
                    Partner.model_validate(partner)


def test_the_example_files_are_shown_in_the_guide() -> None:
    shown = {text for page in sorted(GUIDE.glob("*.md")) for text in yaml_blocks(page)}
    for example in sorted((GUIDE / "examples").glob("*.yml")):
        text = example.read_text(encoding="utf-8")
        assert text in shown, f"guide/examples/{example.name} is not shown in any guide page"


def _variables(value: Any, prefix: str) -> list[str]:
    """Names a page can print or loop over (not the groups around them, like `agency`)."""
    names = [prefix] if prefix and not isinstance(value, dict) else []
    if isinstance(value, dict):
        for key, item in value.items():
            names += _variables(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        names += [n for n in _variables(value[0], f"{prefix}[]") if n != f"{prefix}[]"]
    return names


def test_every_page_variable_is_in_the_pages_guide(demo: Any) -> None:
    context = page_context(demo.profile, "en", SiteLinks("/", "en", "en"))
    text = PAGES_GUIDE.read_text(encoding="utf-8")
    names = _variables(context, "")
    assert "partners[].kind_label" in names and "agency.liaison.phone" in names
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"guide/pages.md does not describe the page variables {missing}"

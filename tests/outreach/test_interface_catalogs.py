"""An agency's own interface strings, and `outreach check` naming what a language still lacks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from click.testing import CliRunner

from outreach.catalog_coverage import missing_strings, tipster_strings
from outreach.cli import main
from outreach.i18n import catalog_path, kit_catalog_path, translations
from outreach.languages import native_name, theme_language
from outreach.loader import load_profile
from outreach.site.sitegen import build_site, material_languages
from tests.conftest import edit_yaml


def write_agency_catalog(
    agency: Path, lang: str, strings: dict[tuple[str | None, str], str]
) -> Path:
    """An agency's catalog of *lang*, as a translator's tool would save it."""
    catalog = Catalog(locale=lang.replace("-", "_"))
    for (context, msgid), text in strings.items():
        catalog.add(msgid, text, context=context)
    path = catalog_path(lang, agency / "locale")
    path.parent.mkdir(parents=True)
    with path.open("wb") as po:
        write_po(po, catalog)
    return path


def every_string(lang: str) -> dict[tuple[str | None, str], str]:
    """A stand-in translation of every tipster-facing string, placeholders kept."""
    return {key: f"[{lang}] {key[1]}" for key in tipster_strings()}


def test_tipster_strings_leave_out_the_staff_pages_only() -> None:
    found = set(tipster_strings())
    assert (None, "Send report") in found  # the form
    assert (None, "Report a concern") in found  # the site's call-to-action
    assert ("mail", "New report %(ref)s") in found  # mail to partners
    assert (None, "There is a problem") in found  # the form and the staff pages both
    assert (None, "Sign in") not in found  # staff pages only
    assert len(found) > 200


def test_a_language_without_a_catalog_is_reported_and_fails_strict(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda d: d.update(languages=["en", "es", "so"]))
    result = CliRunner().invoke(main, ["check", "--profile", str(demo_copy)])
    assert result.exit_code == 0, result.output
    total = len(tipster_strings())
    line = next(line for line in result.output.splitlines() if "languages[2]" in line)
    assert f"'so': {total} of {total} strings a person who reports sees are not translated" in line
    assert "locale/so/LC_MESSAGES/messages.po" in line
    assert "e.g. " in line and line.count('"') == 6, "the first three, each quoted"
    assert "languages[1]" not in result.output, "the kit's Spanish is complete"

    strict = CliRunner().invoke(main, ["check", "--strict", "--profile", str(demo_copy)])
    assert strict.exit_code == 1
    assert "interface strings are missing in so" in strict.output


def test_a_partial_agency_catalog_counts_what_it_still_lacks(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda d: d.update(languages=["en", "es", "so"]))
    strings = every_string("so")
    left_out = next(iter(strings))
    del strings[left_out]
    write_agency_catalog(demo_copy, "so", strings)
    gap = missing_strings("so", load_profile(demo_copy).profile.interface_locale)
    assert gap.missing == (left_out,)
    strict = CliRunner().invoke(main, ["check", "--strict", "--profile", str(demo_copy)])
    assert strict.exit_code == 1
    assert f"'so': 1 of {gap.total} strings" in strict.output


def test_complete_languages_pass_strict(demo_copy: Path) -> None:
    edit_yaml(demo_copy / "agency.yml", lambda d: d.update(languages=["en", "es", "so"]))
    write_agency_catalog(demo_copy, "so", every_string("so"))
    result = CliRunner().invoke(main, ["check", "--strict", "--profile", str(demo_copy)])
    assert result.exit_code == 0, result.output
    assert "strings a person who reports sees" not in result.output


def test_an_agency_string_wins_on_the_site(new_agency: Callable[..., Path], tmp_path: Path) -> None:
    folder = new_agency("riverside", lambda d: d.update(languages=["en", "es"]))
    write_agency_catalog(folder, "es", {(None, "Report a concern"): "Cuéntenos su inquietud"})
    site = tmp_path / "out"
    build_site(load_profile(folder), site, jobs=1)
    spanish = (site / "es" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'class="[^"]*outreach-cta__report"[^>]*>Cuéntenos su inquietud</a>', spanish)
    # Every other string still comes from the kit's catalog, and the kit's file is untouched.
    assert "Llamar al" in spanish
    assert "Cuéntenos su inquietud" not in catalog_path("es").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("code", "catalog", "theme"),
    [
        ("zh", "zh", "zh"),
        ("zh-Hans", "zh", "zh"),
        ("zh-CN", "zh", "zh"),
        ("zh-Hant", "zh-Hant", "zh-Hant"),
        ("zh-TW", "zh-Hant", "zh-TW"),  # the theme has a Taiwan variant of its own
        ("zh-HK", "zh-Hant", "zh-Hant"),
        ("es-MX", "es", "es"),
        ("ht", "ht", "ht"),  # the site supplies its own theme partial
        ("so", None, "so"),  # no catalog yet: English strings
    ],
)
def test_each_code_reads_the_catalog_and_theme_of_its_writing(
    code: str, catalog: str | None, theme: str
) -> None:
    path = kit_catalog_path(code)
    assert (path.parts[-3].replace("_", "-") if path else None) == catalog
    assert theme_language(code, material_languages()) == theme
    if catalog is not None:
        assert (
            translations(code).gettext("Send report")
            == translations(catalog).gettext("Send report")
            != "Send report"
        )


def test_the_switcher_names_both_chinese_scripts_and_tagalog_apart() -> None:
    assert native_name("zh") == native_name("zh-Hans") == "简体中文"
    assert native_name("zh-Hant") == "繁體中文"
    assert native_name("tl") == "Tagalog"
    assert native_name("vi") == "Tiếng Việt" and native_name("ar") == "العربية"

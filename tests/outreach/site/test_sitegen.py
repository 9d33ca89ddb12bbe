"""The site generator: one localized static site per agency, built from base pages + profile."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from outreach.assets import base_config
from outreach.loader import load_profile
from outreach.site.sitegen import BuildError, build_site

NAV_PAGES = yaml.safe_load(base_config().read_text())["nav"]


def page_url(name: str) -> str:
    return "" if name == "index.md" else name.removesuffix(".md") + "/"


def html(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def build(folder: Path, out: Path) -> Path:
    build_site(load_profile(folder), out, jobs=1)
    return out


def html_pages(site: Path) -> list[Path]:
    return [p for p in site.rglob("*.html") if p.name != "404.html"]


@pytest.mark.parametrize("lang_prefix", ["", "es/"])
@pytest.mark.parametrize("name", NAV_PAGES)
def test_every_nav_page_is_built_in_both_languages(
    demo_site: Path, lang_prefix: str, name: str
) -> None:
    page = html(demo_site, lang_prefix + page_url(name))
    expected_lang = "es" if lang_prefix else "en"
    assert f'<html lang="{expected_lang}"' in page


def test_language_switcher_lands_on_the_same_page(demo_site: Path) -> None:
    english = html(demo_site, "warning-signs/")
    spanish = html(demo_site, "es/warning-signs/")
    for page in (english, spanish):
        assert 'href="/es/warning-signs/" hreflang="es"' in page
        assert 'href="/warning-signs/" hreflang="en"' in page


def test_every_page_has_the_call_to_action_from_the_profile(demo_site: Path) -> None:
    pages = html_pages(demo_site)
    assert len(pages) >= 2 * len(NAV_PAGES)
    for path in pages:
        text = path.read_text(encoding="utf-8")
        spanish = path.relative_to(demo_site).parts[0] == "es"
        report = "/es/report" if spanish else "/report"
        assert (
            f'class="md-button md-button--primary outreach-cta__report" href="{report}"' in text
        ), path
        assert 'href="tel:911"' in text, path
        danger = "¿Hay peligro ahora? Llame al 911." if spanish else "In danger now? Call 911."
        assert danger in re.sub(r"<[^>]+>", "", text), path
        assert '<bdi dir="ltr">911</bdi>' in text, path  # kept left to right in any language


def test_partner_directory_in_each_language(demo_site: Path, demo: Any) -> None:
    english = html(demo_site, "partners/")
    spanish = html(demo_site, "es/partners/")
    for partner in demo.profile.partners:
        name = partner.name
        assert name["en"].replace("'", "&#39;") in english or name["en"] in english
        assert name["es"] in spanish
    assert "Nuestros socios" in spanish and "Our partners" in english


# Anything that makes a browser fetch from another origin when the page loads.
_EXTERNAL_LOADS = [
    re.compile(
        r"<(?:script|img|iframe|source|video|audio|embed|track)\b[^>]*\bsrc=[\"']?(?:https?:)?//",
        re.I,
    ),
    re.compile(r"\bsrcset=[\"'][^\"']*(?:https?:)?//", re.I),
    re.compile(r"<object\b[^>]*\bdata=[\"']?(?:https?:)?//", re.I),
    re.compile(r"url\(\s*[\"']?(?:https?:)?//", re.I),
    re.compile(r"@import\s+[\"']?(?:url\()?[\"']?(?:https?:)?//", re.I),
    re.compile(r"http-equiv=[\"']?refresh", re.I),
]
_TRACKERS = re.compile(
    r"fonts\.googleapis|fonts\.gstatic|googletagmanager|google-analytics|cdn\.jsdelivr|unpkg\.com|cdnjs",
    re.I,
)


# <link> tags that name another page (canonical, alternate) load nothing; any other rel does.
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_NO_LOAD_RELS = {"canonical", "alternate"}


def _external_link_tags(text: str) -> list[str]:
    found = []
    for tag in _LINK_TAG.findall(text):
        href = re.search(r"\bhref=[\"']?((?:https?:)?//[^\"' >]*)", tag, re.I)
        rel = re.search(r"\brel=[\"']?([^\"'>]*)", tag, re.I)
        rels = set(rel.group(1).lower().split()) if rel else set()
        if href and (not rels or not rels <= _NO_LOAD_RELS):
            found.append(tag)
    return found


def third_party_loads(site: Path) -> list[str]:
    found = []
    for path in site.rglob("*"):
        if path.suffix not in {".html", ".css", ".js", ".xml", ".json", ".svg"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(site)}: {tag[:80]}" for tag in _external_link_tags(text)]
        patterns = _EXTERNAL_LOADS if path.suffix in {".html", ".css", ".svg"} else []
        for pattern in [*patterns, _TRACKERS]:
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(site)}: {match.group(0)[:80]}")
    return found


def test_zero_third_party_requests_in_any_built_file(demo_site: Path) -> None:
    assert third_party_loads(demo_site) == []


def test_the_third_party_scan_catches_a_font(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css">'
    )
    (tmp_path / "a.css").write_text("body { background: url('//cdn.example.org/x.png') }")
    assert len(third_party_loads(tmp_path)) == 3


def test_each_language_has_its_own_search_index(demo_site: Path) -> None:
    english = json.loads((demo_site / "search" / "search_index.json").read_text())
    spanish = json.loads((demo_site / "es" / "search" / "search_index.json").read_text())
    assert english["config"]["lang"] == ["en"]
    assert spanish["config"]["lang"] == ["es"]
    assert {d["location"] for d in english["docs"]} and all(
        not d["location"].startswith("es/") for d in english["docs"]
    )


def test_branding_from_the_profile(demo_site: Path) -> None:
    page = html(demo_site, "")
    assert (
        "<title>Harbor County Prevention Team</title>" in page
        or "Harbor County Prevention Team" in page
    )
    assert "#1f4e79" in (demo_site / "assets" / "agency.css").read_text()
    assert (demo_site / "assets" / "logo.svg").is_file()
    assert "Equipo de Prevención del Condado de Harbor" in html(demo_site, "es/")


def test_the_logo_is_named_by_the_agencys_name_in_each_language(demo_site: Path) -> None:
    for prefix, name in (("", "Harbor County Prevention Team"), ("es/", "Equipo de Prevención")):
        page = html(demo_site, prefix + "warning-signs/")
        logos = re.findall(r'<img src="[^"]*logo\.svg" alt="([^"]*)"', page)
        assert logos and all(alt.startswith(name) for alt in logos), logos
        assert 'alt="logo"' not in page


def test_demo_spanish_site_has_no_fallback_notice(demo_site: Path) -> None:
    for path in html_pages(demo_site / "es"):
        assert "todavía no está disponible" not in path.read_text(encoding="utf-8"), path


@pytest.fixture
def bilingual(new_agency: Callable[..., Path]) -> Path:
    def two_languages(data: dict[str, Any]) -> None:
        data["languages"] = ["en", "es"]

    return new_agency("riverside", two_languages)


def test_untranslated_page_falls_back_with_a_notice_in_the_readers_language(
    bilingual: Path, tmp_path: Path
) -> None:
    (bilingual / "docs" / "en" / "events.md").write_text("# Events\n\nCome to our events.\n")
    edit_nav(bilingual, [*NAV_PAGES, "events.md"])
    site = build(bilingual, tmp_path / "out")
    spanish = html(site, "es/events/")
    assert (
        "Esta página todavía no está disponible en español. Está leyendo la versión en inglés."
        in spanish
    )
    # The English text is marked as English, laid out left to right (attribute order is
    # Markdown's to choose).
    assert '<div dir="ltr" lang="en">' in spanish and "Come to our events." in spanish
    assert "todavía no está disponible" not in html(site, "es/warning-signs/")


def test_a_fallback_page_fills_in_values_in_its_own_language(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    def english_and_vietnamese(data: dict[str, Any]) -> None:
        data["languages"] = ["en", "vi"]
        data["agency"]["name"] = {"en": "Riverside Prevention Team", "vi": "Nhóm Phòng ngừa"}
        data["agency"]["hours"] = {"en": "Weekdays 9 to 5", "vi": "Thứ Hai đến Thứ Sáu"}

    folder = new_agency("riverside", english_and_vietnamese)
    page = "# Events\n\nCome to events run by {{ agency.name }}, open {{ agency.hours }}.\n"
    (folder / "docs" / "en" / "events.md").write_text(page)
    edit_nav(folder, [*NAV_PAGES, "events.md"])
    site = build(folder, tmp_path / "out")
    vietnamese = html(site, "vi/events/")
    assert "Come to events run by Riverside Prevention Team, open Weekdays 9 to 5." in vietnamese
    assert "run by Nhóm" not in vietnamese and "open Thứ" not in vietnamese
    assert 'href="/vi/report"' in vietnamese, "links still lead to the reader's language"
    assert "Nhóm Phòng ngừa" in vietnamese, "the site's own header stays in Vietnamese"


def edit_nav(folder: Path, nav: list[Any]) -> None:
    from tests.conftest import edit_yaml

    def set_nav(data: dict[str, Any]) -> None:
        data["site"] = {"nav": nav}

    edit_yaml(folder / "agency.yml", set_nav)


def test_rtl_language_renders_right_to_left(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    folder = new_agency("rtl-fixture", lambda d: d.update(languages=["en", "ar"]))
    site = build(folder, tmp_path / "out")
    arabic = html(site, "ar/")
    assert '<html lang="ar"' in arabic and 'dir="rtl"' in arabic
    assert 'dir="rtl"' not in html(site, "")
    # The English text of a page with no Arabic version keeps its own direction.
    assert '<div dir="ltr" lang="en">' in arabic


@pytest.mark.parametrize("code", ["ht", "so"])
def test_language_without_material_strings_still_builds(
    new_agency: Callable[..., Path], tmp_path: Path, code: str
) -> None:
    folder = new_agency(f"{code}-fixture", lambda d: d.update(languages=["en", code]))
    site = build(folder, tmp_path / "out")
    page = html(site, f"{code}/")
    assert f'<html lang="{code}"' in page and 'dir="ltr"' in page
    assert (site / code / "search" / "search_index.json").is_file()


def test_override_replaces_a_base_page(new_agency: Callable[..., Path], tmp_path: Path) -> None:
    folder = new_agency()
    (folder / "docs" / "en" / "warning-signs.md").write_text(
        "# Signs\n\nOur own words for {{ agency.jurisdiction }}.\n"
    )
    site = build(folder, tmp_path / "out")
    assert "Our own words for Riverside." in html(site, "warning-signs/")


def test_agency_adds_a_page_and_changes_the_nav(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    folder = new_agency()
    (folder / "docs" / "en" / "events.md").write_text("# Community events\n\nSee you there.\n")
    edit_nav(
        folder,
        ["index.md", "events.md", {"section": "Help", "pages": ["get-help.md", "sources.md"]}],
    )
    site = build(folder, tmp_path / "out")
    home = html(site, "")
    assert "Community events" in home and 'href="events/"' in home
    assert "See you there." in html(site, "events/")


def expect_build_error(folder: Path, out: Path) -> str:
    with pytest.raises(BuildError) as caught:
        build(folder, out)
    return str(caught.value)


def test_nav_naming_a_missing_page_fails(new_agency: Callable[..., Path], tmp_path: Path) -> None:
    folder = new_agency()
    edit_nav(folder, ["index.md", "no-such-page.md"])
    message = expect_build_error(folder, tmp_path / "out")
    assert "site.nav names 'no-such-page.md'" in message and "agency.yml" in message


def test_override_folder_for_a_language_the_profile_lacks_fails(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    folder = new_agency()
    (folder / "docs" / "fr").mkdir()
    (folder / "docs" / "fr" / "index.md").write_text("# Bonjour\n")
    message = expect_build_error(folder, tmp_path / "out")
    assert "docs/fr" in message and "'fr' is not one of the profile's languages" in message


def test_undefined_variable_fails_naming_page_and_variable(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    folder = new_agency()
    (folder / "docs" / "en" / "get-help.md").write_text("# Help\n\nCall {{ agency.fax }} now.\n")
    message = expect_build_error(folder, tmp_path / "out")
    assert "get-help.md line 3: unknown variable" in message and "'fax'" in message


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ agency.__class__ }}",
        "{{ lipsum.__globals__ }}",
    ],
)
def test_sandbox_escape_fails_the_build(
    new_agency: Callable[..., Path], tmp_path: Path, attack: str
) -> None:
    folder = new_agency()
    (folder / "docs" / "en" / "index.md").write_text(f"# Home\n\n{attack}\n")
    message = expect_build_error(folder, tmp_path / "out")
    assert "index.md" in message
    assert "not allowed" in message or "unknown variable" in message


def test_broken_link_fails_and_keeps_the_previous_site(
    new_agency: Callable[..., Path], tmp_path: Path
) -> None:
    folder = new_agency()
    out = build(folder, tmp_path / "out")
    good = html(out, "")
    (folder / "docs" / "en" / "index.md").write_text(
        "# Home\n\nSee [nothing](missing.md) and [a](sources.md#no-anchor).\n"
    )
    message = expect_build_error(folder, out)
    assert "index.md" in message and "missing.md" in message
    assert "no-anchor" in message
    assert html(out, "") == good
    # Beside the site: the PDFs kept for the next build, and no temporary folder.
    beside = sorted(p.name for p in out.parent.iterdir() if p.name != "agencies")
    assert beside == [".out-materials-cache", "out"], "no temporary folders left behind"


def test_second_agency_site_has_none_of_the_demos_values(
    new_agency: Callable[..., Path], tmp_path: Path, demo: Any
) -> None:
    folder = new_agency()
    site = build(folder, tmp_path / "out")
    profile = demo.profile
    demo_values = {
        profile.agency.short_name,
        profile.agency.phone,
        profile.agency.email,
        profile.agency.liaison.name,
        profile.agency.liaison.email,
        "Harbor",
        "harbor-county",
    }
    for partner in profile.partners:
        demo_values |= (
            set(partner.name.values()) if isinstance(partner.name, dict) else {partner.name}
        )
    for path in site.rglob("*"):
        if path.suffix in {".html", ".xml", ".json", ".css"}:
            text = path.read_text(encoding="utf-8")
            for value in demo_values:
                assert value not in text, f"{value!r} in {path.relative_to(site)}"
    assert "Riverside Prevention Team" in html(site, "")


@pytest.mark.parametrize("prefix", ["", "es/"])
def test_old_browsers_get_the_resize_polyfill_from_this_site(demo_site: Path, prefix: str) -> None:
    scripts = demo_site / prefix / "assets" / "javascripts"
    (bundle,) = scripts.glob("bundle.*.min.js")
    code = bundle.read_text(encoding="utf-8")
    assert f'"/{prefix}assets/javascripts/resize-observer.js"' in code
    assert "unpkg" not in code
    assert (scripts / "resize-observer.js").is_file()


ONION = "http://" + "a2" * 28 + ".onion/"


def test_the_privacy_page_names_the_onion_service_only_when_there_is_one(
    bilingual: Path, demo_site: Path, tmp_path: Path
) -> None:
    from tests.conftest import edit_yaml

    def with_onion(data: dict[str, Any]) -> None:
        data["agency"]["onion_url"] = ONION

    assert ".onion" not in html(demo_site, "privacy/")
    edit_yaml(bilingual / "agency.yml", with_onion)
    site = build(bilingual, tmp_path / "out")
    assert "Tor Browser" in html(site, "privacy/") and ONION in html(site, "privacy/")
    assert "navegador Tor" in html(site, "es/privacy/") and ONION in html(site, "es/privacy/")

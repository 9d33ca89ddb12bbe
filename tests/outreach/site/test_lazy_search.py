"""Search that loads when opened: Material's set-up waits for the search toggle, and its worker
is a loader that fetches the engine with the index and holds queries until it is ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.site.lazy_search import defer_search

# Material 9.8's set-up, as its bundle writes it (minified names vary between versions).
SETUP = 'L($(location.protocol!=="file:"),Je("search")).pipe(Re(o=>o),b(()=>t))'


def fake_site(tmp_path: Path, bundle: str) -> Path:
    scripts = tmp_path / "assets" / "javascripts"
    (scripts / "workers").mkdir(parents=True)
    (scripts / "bundle.0123abcd.min.js").write_text(f"var a=1;{bundle};", encoding="utf-8")
    (scripts / "workers" / "search.89abcdef.min.js").write_text("engine()", encoding="utf-8")
    return tmp_path


def test_setup_waits_for_search_to_open_and_the_worker_loads_the_engine(tmp_path: Path) -> None:
    site = fake_site(tmp_path, SETUP)
    assert defer_search(site) == []
    scripts = site / "assets" / "javascripts"
    bundle = (scripts / "bundle.0123abcd.min.js").read_text(encoding="utf-8")
    assert 'L($(!1),Je("search"))' in bundle
    assert "location.protocol" not in bundle
    loader = (scripts / "workers" / "search.89abcdef.min.js").read_text(encoding="utf-8")
    assert 'var engine = "search.89abcdef.engine.min.js"' in loader
    assert "importScripts(engine)" in loader
    engine = scripts / "workers" / "search.89abcdef.engine.min.js"
    assert engine.read_text(encoding="utf-8") == "engine()"


@pytest.mark.parametrize("bundle", ["", SETUP + ";" + SETUP])
def test_a_changed_material_is_a_build_problem_not_a_silent_change(
    tmp_path: Path, bundle: str
) -> None:
    site = fake_site(tmp_path, bundle)
    [problem] = defer_search(site)
    assert "Material's search set-up has changed" in problem
    assert "bundle.0123abcd.min.js" in problem
    assert (site / "assets" / "javascripts" / "workers" / "search.89abcdef.min.js").read_text(
        encoding="utf-8"
    ) == "engine()", "nothing is half rewritten"


@pytest.mark.parametrize("prefix", ["", "es/"])
def test_the_built_site_starts_search_when_it_opens(demo_site: Path, prefix: str) -> None:
    scripts = demo_site / prefix / "assets" / "javascripts"
    (bundle,) = scripts.glob("bundle.*.min.js")
    assert 'location.protocol!=="file:"' not in bundle.read_text(encoding="utf-8")
    (engine,) = (scripts / "workers").glob("search.*.engine.min.js")
    loader = engine.with_name(engine.name.replace(".engine.min.js", ".min.js"))
    assert f'var engine = "{engine.name}"' in loader.read_text(encoding="utf-8")
    assert len(loader.read_bytes()) < 2048

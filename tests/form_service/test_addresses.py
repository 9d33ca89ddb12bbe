"""Site and report service on any addresses (agency.service_url), in both layouts.

With the second fixture profile (tests/fixtures/region): the site under a sub-path,
https://region.example.org/prevent/, and
- the service sharing it (no service_url): `outreach serve` answers /prevent/report, and
  every link between site and form is a path under /prevent/;
- the service on an address of its own (service_url: https://report.region.example.org/):
  the site links to the form there, and the form's links lead back to the site.
Either way the site works on any static host: no link leaves its sub-path.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from form_service.app import create_app
from form_service.settings import Settings
from outreach.loader import LoadedProfile, load_profile
from outreach.site.sitegen import build_site
from tests.conftest import REPO, edit_yaml
from tests.live_server import outreach_serve

from .conftest import code_of, token_of
from .samples import VALID_FORM

REGION = REPO / "tests" / "fixtures" / "region"
SITE = "https://region.example.org/prevent/"
SERVICE = "https://report.region.example.org/"
REGION_FORM = {**VALID_FORM, "area": "riverbend"}
_HREF = re.compile(r'(?:href|src|action)="([^"#]*)')


def _region(tmp: Path, own_service: bool) -> LoadedProfile:
    folder = tmp / "region"
    shutil.copytree(REGION, folder)
    if not own_service:
        edit_yaml(folder / "agency.yml", lambda data: data["agency"].pop("service_url"))
    return load_profile(folder)


@pytest.fixture(scope="module", params=["shared", "own-address"])
def layout(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp(request.param)
    loaded = _region(tmp, own_service=request.param == "own-address")
    build_site(loaded, tmp / "site")
    return request.param, loaded, tmp / "site"


def _client(loaded: LoadedProfile, site: Path, base_url: str) -> TestClient:
    settings = Settings(
        profile=loaded,
        site_dir=site,
        data_dir=site.parent / f"data-{secrets.token_hex(4)}",
        secret_keys=(secrets.token_hex(32),),
        min_fill_seconds=0.0,
        status_min_seconds=0.0,
    )
    return TestClient(create_app(settings), base_url=base_url)


def _links(html: str) -> list[str]:
    return _HREF.findall(html)


def test_the_site_links_to_the_form_where_the_service_is(layout: Any) -> None:
    name, _, site = layout
    service = "/prevent/" if name == "shared" else SERVICE
    for lang in ("", "vi/", "ar/"):
        page = (site / lang / "how-to-report" / "index.html").read_text(encoding="utf-8")
        assert f'href="{service}{lang}report"' in page, (name, lang)
        assert f'href="{service}{lang}status"' in page, (name, lang)


def test_canonical_addresses_and_the_sitemap_name_the_sub_path_once(layout: Any) -> None:
    _, _, site = layout
    for lang in ("", "vi/", "ar/"):
        page = (site / lang / "index.html").read_text(encoding="utf-8")
        assert f'<link rel="canonical" href="{SITE}{lang}">' in page, lang
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    assert f"<loc>{SITE}</loc>" in sitemap and "/prevent/prevent/" not in sitemap


def test_a_static_host_serves_the_site_under_its_sub_path(layout: Any) -> None:
    """No link of any page leaves /prevent/ on the site's host (a static host has nothing else)."""
    name, _, site = layout
    for page in site.rglob("*.html"):
        for link in _links(page.read_text(encoding="utf-8")):
            if link.startswith("/"):
                assert link.startswith("/prevent/"), (name, page, link)
            elif "://" in link and link.startswith("https://region.example.org"):
                assert link.startswith(SITE), (name, page, link)


def test_the_form_its_links_and_actions_follow_the_setting(layout: Any) -> None:
    name, loaded, site = layout
    shared = name == "shared"
    base = "https://region.example.org" if shared else SERVICE.rstrip("/")
    own = "/prevent/" if shared else "/"  # the service's pages, on its own host
    back = "/prevent/" if shared else SITE  # the site, from the service's pages
    with _client(loaded, site, base) as client:
        form = client.get(f"{own}ar/report")
        assert form.status_code == 200
        links = _links(form.text)
        assert f"{own}ar/report" in links  # the form's action
        assert f"{own}assets-form/form.css" in links
        assert f"{back}ar/" in links and f"{back}ar/privacy/" in links
        assert f"{own}vi/report" in links  # the language switcher
        assert client.get(f"{own}assets-form/form.css").status_code == 200
        icon = next(link for link in links if link.endswith((".png", ".svg")))
        assert client.get(icon).status_code == 200
        token = token_of(form.text)
        receipt = client.post(f"{own}ar/report", data={"token": token, **REGION_FORM})
        assert receipt.status_code == 200 and code_of(receipt.text)
        assert f"{own}ar/status" in _links(receipt.text)
        assert f"{back}ar/after-you-report/" in _links(receipt.text)
        # The service's headers still treat the form as the form: never cached.
        assert receipt.headers["cache-control"] == "no-store"
        assert client.get(f"{own}ar/status").status_code == 200


def test_the_service_serves_the_site_under_its_path(tmp_path: Path) -> None:
    loaded = _region(tmp_path, own_service=False)
    site = tmp_path / "site"
    build_site(loaded, site)
    with _client(loaded, site, "https://region.example.org") as client:
        home = client.get("/prevent/ar/")
        assert home.status_code == 200 and 'dir="rtl"' in home.text
        # Every link of every language's home page to the service answers.
        for lang in ("", "vi/", "ar/"):
            page = client.get(f"/prevent/{lang}").text
            targets = {link for link in _links(page) if re.search(r"/(report|status)$", link)}
            assert targets, lang
            for target in targets:
                assert client.get(target).status_code == 200, target
        # An error page under the path is in the language the path names.
        refused = client.delete("/prevent/ar/report", headers={"accept-language": "vi"})
        assert refused.status_code == 405 and '<html lang="ar"' in refused.text
        root = client.get("/", follow_redirects=False)
        assert root.status_code == 308 and root.headers["location"] == "/prevent/"
        assert client.get("/staff/sign-in").status_code == 200  # staff stay at the root


def test_outreach_serve_answers_the_sub_path(tmp_path: Path) -> None:
    """The bug: with site_url …/prevent/, pages linked to /prevent/report and serve said 404."""
    loaded = _region(tmp_path, own_service=False)
    build_site(loaded, tmp_path / "site")
    os.environ.setdefault("RIVERBEND_UNIVERSITY_WEBHOOK_SECRET", "whsec_" + "A" * 44)
    with outreach_serve(
        tmp_path / "site", tmp_path / "data", "--profile", str(loaded.folder)
    ) as live:
        base = f"http://127.0.0.1:{live.port}"
        with httpx.Client(base_url=base) as client:
            home = client.get("/prevent/")
            assert home.status_code == 200
            report = client.get("/prevent/report")
            assert report.status_code == 200 and 'action="/prevent/report"' in report.text
            assert client.get("/prevent/ar/report").status_code == 200
            assert client.get("/", follow_redirects=True).url.path == "/prevent/"


@pytest.fixture(autouse=True)
def _no_leftover_env() -> Iterator[None]:
    before = os.environ.get("RIVERBEND_UNIVERSITY_WEBHOOK_SECRET")
    yield
    if before is None:
        os.environ.pop("RIVERBEND_UNIVERSITY_WEBHOOK_SECRET", None)

"""The kit installed from its wheel works like a checkout, from any folder.

The wheel is built from the tree and installed in a fresh venv; every command then runs in
an empty folder far from the checkout, with no PYTHONPATH, so the kit can only read the
files the wheel carries.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, edit_yaml, fill_placeholders, free_port
from tests.packaging.kit import InstalledKit, new_venv, run, stop, wait_for_200

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

KIT_FILES = ("mkdocs.yml", "docs/", "templates/", "agencies/demo/")
CODE = ("outreach/", "form_service/")


def expected_in_wheel() -> set[str]:
    """Each tracked file the kit needs, named as the wheel must hold it."""
    expected = set()
    for name in run(["git", "ls-files"], cwd=REPO).stdout.splitlines():
        if name.startswith(KIT_FILES):
            expected.add(f"outreach_kit_files/{name}")
        elif name.startswith(CODE) and name.endswith((".py", ".po", ".cfg")):
            expected.add(name)
    return expected


@pytest.fixture(scope="module")
def installed_kit(kit_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> InstalledKit:
    kit = new_venv(tmp_path_factory.mktemp("venv") / "kit")
    kit.pip_install(str(kit_wheel))
    return kit


@pytest.fixture(scope="module")
def agency_repo(installed_kit: InstalledKit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An agency's own folder, away from the checkout, with agencies/riverside/ in it."""
    home = tmp_path_factory.mktemp("riverside-repo")
    installed_kit.outreach("new", "riverside", cwd=home)
    fill_placeholders(home / "agencies" / "riverside")
    return home


def test_the_wheel_carries_the_code_and_the_kit_files(kit_wheel: Path) -> None:
    with zipfile.ZipFile(kit_wheel) as wheel:
        names = set(wheel.namelist())
    missing = sorted(expected_in_wheel() - names)
    assert not missing, f"not in the wheel: {missing}"
    agencies = [n for n in names if n.startswith("outreach_kit_files/agencies/")]
    assert all(n.startswith("outreach_kit_files/agencies/demo/") for n in agencies), agencies


def test_every_folder_of_shipped_files_is_a_listed_package(kit_wheel: Path) -> None:
    """setuptools may stop shipping the files of a folder that is not a listed package."""
    log = (kit_wheel.parent / "build.log").read_text(encoding="utf-8")
    unlisted = [line.strip() for line in log.splitlines() if "absent from the `packages`" in line]
    assert not unlisted, "\n".join(unlisted)


def test_the_installed_kit_reads_nothing_from_the_checkout(
    installed_kit: InstalledKit, tmp_path: Path
) -> None:
    code = (
        "import form_service, outreach.assets\n"
        "print(outreach.assets.kit_root())\n"
        "print(form_service.__file__)"
    )
    shown = run([str(installed_kit.python), "-c", code], cwd=tmp_path, env=installed_kit.env())
    for line in shown.stdout.splitlines():
        assert Path(line).is_relative_to(installed_kit.venv), line


def test_bare_check_uses_the_demo_agency_carried_by_the_wheel(
    installed_kit: InstalledKit, tmp_path: Path
) -> None:
    shown = installed_kit.outreach("check", cwd=tmp_path)
    assert "OK (Harbor County Prevention Team)" in shown.stdout


def test_a_new_agency_checks_and_builds_with_the_installed_kit(
    installed_kit: InstalledKit, agency_repo: Path, tmp_path: Path
) -> None:
    installed_kit.outreach("check", "--profile", "agencies/riverside", cwd=agency_repo)
    site = tmp_path / "site"
    installed_kit.outreach(
        "build", "--profile", "agencies/riverside", "--out", str(site), cwd=agency_repo
    )
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Riverside Prevention Team" in home


@pytest.mark.server
def test_the_installed_kit_counts_untranslated_strings_from_its_own_files(
    installed_kit: InstalledKit, agency_repo: Path, tmp_path: Path
) -> None:
    """check finds the strings in the installed code and templates, and the catalogs in the
    wheel: Vietnamese is complete, a language with no catalog is not."""
    agency = tmp_path / "agencies" / "riverside"
    shutil.copytree(agency_repo / "agencies" / "riverside", agency)
    edit_yaml(agency / "agency.yml", lambda data: data.update(languages=["en", "vi", "so"]))
    shown = installed_kit.outreach("check", "--profile", "agencies/riverside", cwd=tmp_path)
    assert "languages[2]: 'so': " in shown.stdout
    assert "languages[1]" not in shown.stdout
    strict = subprocess.run(
        [
            str(installed_kit.venv / "bin" / "outreach"),
            "check",
            "--strict",
            "--profile",
            "agencies/riverside",
        ],
        cwd=tmp_path,
        env=installed_kit.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert strict.returncode == 1 and "missing in so" in strict.stderr, strict.stderr


def test_serve_answers_on_the_site_and_the_report_form(
    installed_kit: InstalledKit, agency_repo: Path, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    args = [
        "serve",
        "--profile",
        "agencies/riverside",
        "--port",
        str(port),
        "--out",
        str(tmp_path / "site"),
    ]
    process = installed_kit.start(*args, cwd=agency_repo, log=log)
    try:
        base = f"http://127.0.0.1:{port}"
        urls = [f"{base}/", f"{base}/report", f"{base}/assets-form/form.css"]
        answered = wait_for_200(urls, process, time.monotonic() + 120)
    finally:
        stop(process)
    assert answered, f"`outreach {' '.join(args)}` did not answer 200 on {urls}:\n{log.read_text()}"

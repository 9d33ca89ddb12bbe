"""An agency takes a new kit version by changing its pin; its own folder stays as it was.

Two wheels come from the tree: the current one, and one from a copy whose English home page
gained a sentence and whose version is one higher. An agency folder made by `outreach new`,
away from the checkout, builds with the first; then requirements.txt names the second and
`pip install -r requirements.txt` installs it, as guide/upgrading.md shows. The next build
has the new sentence and still the agency's own values, with no merge step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, fill_placeholders
from tests.guide.guide_text import blocks
from tests.packaging.kit import (
    InstalledKit,
    build_wheel,
    copy_tree,
    folder_digest,
    kit_version,
    new_venv,
    next_version,
    set_kit_version,
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

NEW_SENTENCE = "This sentence is new in the next version of the kit."
AGENCY_NAME = "Riverside Prevention Team"
UPGRADING = REPO / "guide" / "upgrading.md"


@pytest.fixture(scope="module")
def newer_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_tree(tmp_path_factory.mktemp("tree-newer"))
    home = tree / "docs" / "en" / "index.md"
    home.write_text(f"{home.read_text(encoding='utf-8')}\n{NEW_SENTENCE}\n", encoding="utf-8")
    set_kit_version(tree, next_version(kit_version(tree)))
    return build_wheel(tree, tmp_path_factory.mktemp("wheel-newer"))


def guide_commands(containing: str) -> str:
    """The commands of the one block of guide/upgrading.md that shows *containing*, joined."""
    (commands,) = [
        block.commands
        for block in blocks(UPGRADING)
        if any(containing in command for command in block.commands)
    ]
    return " && ".join(commands)


def pin(requirements: Path, wheel: Path) -> None:
    requirements.write_text(f"outreach-kit @ {wheel.as_uri()}\n", encoding="utf-8")


def build_home_page(kit: InstalledKit, repo: Path, out: Path) -> str:
    kit.outreach("check", "--profile", "agencies/riverside", cwd=repo)
    kit.outreach("build", "--profile", "agencies/riverside", "--out", str(out), cwd=repo)
    return (out / "index.html").read_text(encoding="utf-8")


def shell(command: str, kit: InstalledKit, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=kit.env(), capture_output=True, text=True, timeout=120
    )


def test_an_agency_takes_a_new_kit_version_by_changing_its_pin(
    kit_wheel: Path, newer_wheel: Path, tmp_path: Path
) -> None:
    kit = new_venv(tmp_path / "venv")
    repo = tmp_path / "riverside-site"
    repo.mkdir()
    requirements = repo / "requirements.txt"
    pin(requirements, kit_wheel)
    kit.pip_install("-r", str(requirements))
    kit.outreach("new", "riverside", cwd=repo)
    agency = repo / "agencies" / "riverside"
    fill_placeholders(agency)
    untouched = folder_digest(agency)

    home = build_home_page(kit, repo, tmp_path / "site-before")
    assert AGENCY_NAME in home
    assert NEW_SENTENCE not in home
    saved = shell(guide_commands("cp -r"), kit, repo)
    assert saved.returncode == 0, saved.stderr

    pin(requirements, newer_wheel)
    kit.pip_install("-r", str(requirements))

    home = build_home_page(kit, repo, tmp_path / "site-after")
    assert NEW_SENTENCE in home
    assert AGENCY_NAME in home
    assert folder_digest(agency) == untouched
    # The guide's comparison of base pages names the one page the new version changed.
    compared = shell(guide_commands("diff -r"), kit, repo)
    changed = [line for line in compared.stdout.splitlines() if line.startswith(("diff", "Only"))]
    assert len(changed) == 1 and changed[0].endswith("/en/index.md"), compared.stdout

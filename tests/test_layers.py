"""The import contracts in pyproject.toml hold, and an import that points up breaks them.

The broken cases run `lint-imports` on a copy of the two packages with one import added,
so they show that `make lint` would fail, and name the contract, for each kind of mistake.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
CONTRACTS = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # A wide terminal keeps each contract's name and verdict on one line.
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "500"}
    return subprocess.run(
        [LINT_IMPORTS, "--no-logo", "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def verdicts(output: str) -> dict[str, str]:
    found = {}
    for contract_id, name in CONTRACTS.items():
        for line in output.splitlines():
            if line.startswith(f"{name} ") and line.endswith(("KEPT", "BROKEN")):
                found[contract_id] = line.rsplit(" ", 1)[1]
    return found


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("outreach", "form_service"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_are_the_layers_and_the_core() -> None:
    assert set(CONTRACTS) == {"layers", "core"}


def test_the_packages_keep_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == {"layers": "KEPT", "core": "KEPT"}


def test_an_unchanged_copy_keeps_every_contract(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "added", "broken"),
    [
        # The core reaching up. The site and the service import the core, so through it they
        # would reach each other or the CLI: both contracts break.
        ("outreach/profile.py", "import form_service.intake", {"layers", "core"}),
        ("outreach/i18n.py", "import outreach.site.directory", {"layers", "core"}),
        ("outreach/loader.py", "import outreach.cli", {"layers", "core"}),
        # A core module that neither the site nor the service imports: only "core" sees it.
        ("outreach/keys.py", "import form_service.intake", {"core"}),
        # The site and the service are siblings that never import each other.
        ("form_service/pages.py", "import outreach.site.directory", {"layers", "core"}),
        ("outreach/site/directory.py", "import form_service.times", {"layers", "core"}),
        # Nothing imports the CLI, which sits on top.
        ("form_service/app.py", "import outreach.cli", {"layers", "core"}),
    ],
)
def test_an_import_that_points_up_breaks_its_contract(
    copy: Path, module: str, added: str, broken: set[str]
) -> None:
    path = copy / module
    path.write_text(f"{path.read_text(encoding='utf-8')}\n{added}\n", encoding="utf-8")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    expected = {contract: "BROKEN" if contract in broken else "KEPT" for contract in CONTRACTS}
    assert verdicts(result.stdout) == expected
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {added.removeprefix('import ')}" in result.stdout

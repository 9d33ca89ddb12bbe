"""Every pin of constraints.txt installs on the oldest Python the README names.

Debian 12 ships Python 3.11.2, and the README promises 3.11+. A pin whose release needs a
later Python (``Requires-Python: >=3.11.5``) makes `make` fail there with
``ResolutionImpossible``. The test reads each pinned distribution's own metadata, as
installed, so it needs no network.
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import REPO

# The Python releases the kit promises to install on: the first of the README's series,
# and Debian 12's.
README_PYTHON = re.compile(r"Python (\d+\.\d+)\+ \(Debian 12's (\d+\.\d+\.\d+) included\)")


def oldest_pythons() -> list[str]:
    found = README_PYTHON.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert found, "the README no longer names the oldest Python it supports"
    return [f"{found[1]}.0", found[2]]


def pins() -> list[tuple[str, str]]:
    found = []
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            found.append((requirement.name, specifier.version))
    return found


def test_the_readme_and_pyproject_agree() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (declared,) = re.findall(r'^requires-python = "([^"]+)"', pyproject, re.M)
    assert all(Version(python) in SpecifierSet(declared) for python in oldest_pythons())
    assert oldest_pythons() == ["3.11.0", "3.11.2"]


@pytest.mark.parametrize(("name", "version"), pins())
def test_every_pin_admits_the_oldest_python(name: str, version: str) -> None:
    try:
        installed = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} is pinned but not installed: run make (or pip install -c)")
    assert Version(installed.version) == Version(version), (
        f"{name} {installed.version} is installed, constraints.txt pins {version}: run make"
    )
    requires = installed.metadata.get("Requires-Python") or ""
    refused = [
        python for python in oldest_pythons() if Version(python) not in SpecifierSet(requires)
    ]
    assert not refused, f"{name}=={version} needs Python {requires}, refusing {refused}"

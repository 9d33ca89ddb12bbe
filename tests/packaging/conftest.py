"""The wheel built from the checkout, once per session, shared by the packaging suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.kit import build_wheel, copy_tree


@pytest.fixture(scope="session")
def kit_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = copy_tree(tmp_path_factory.mktemp("tree"))
    return build_wheel(tree, tmp_path_factory.mktemp("wheel"))

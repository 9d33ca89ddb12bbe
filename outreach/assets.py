"""Where the kit's own files are: the base MkDocs config, base pages, templates, demo agency.

They sit at the top of the repository (``mkdocs.yml``, ``docs/``, ``templates/``,
``agencies/demo/``) and ship as the data-only package ``outreach_kit_files`` (see
pyproject.toml). Every part of the kit finds them here, so a checkout with an editable
install and an installed wheel read them the same way.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

_PACKAGE = "outreach_kit_files"


class MissingKitFiles(RuntimeError):
    """The kit is installed without its files: a broken or partial installation."""


@functools.cache
def kit_root() -> Path:
    """The folder holding mkdocs.yml, docs/, templates/ and agencies/demo/.

    The package has no ``__init__.py``, so it is a namespace package, and an editable
    install puts a marker that is not a folder in its ``__path__``; on Python 3.11 and
    3.12, ``importlib.resources.files()`` refuses such a path. Reading the package's
    search locations from the import system gives the same folder ``files()`` would, and
    gives a real path, which MkDocs and Jinja2 need.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    for location in locations or []:
        folder = Path(location)
        if (folder / "mkdocs.yml").is_file():
            return folder
    raise MissingKitFiles(
        f"The kit's files (package {_PACKAGE}) are missing; reinstall the outreach kit."
    )


def base_config() -> Path:
    """The base MkDocs configuration every generated site inherits."""
    return kit_root() / "mkdocs.yml"


def base_docs() -> Path:
    """The base content pages, one folder per language."""
    return kit_root() / "docs"


def templates(kind: str) -> Path:
    """templates/<kind>: ``site`` (theme overrides), ``form`` (service pages) or ``mail``."""
    return kit_root() / "templates" / kind


def demo_profile() -> Path:
    """The demo agency's folder, used when no profile is named."""
    return kit_root() / "agencies" / "demo"

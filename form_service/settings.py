"""One frozen settings object for the service, read from OUTREACH_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from outreach.loader import LoadedProfile


@dataclass(frozen=True)
class Settings:
    profile: LoadedProfile
    site_dir: Path
    data_dir: Path

    @classmethod
    def from_env(
        cls,
        profile: LoadedProfile,
        site_dir: Path,
        environ: Mapping[str, str] = os.environ,
    ) -> Settings:
        return cls(
            profile=profile,
            site_dir=site_dir.resolve(),
            data_dir=Path(environ.get("OUTREACH_DATA_DIR", "var")).resolve(),
        )

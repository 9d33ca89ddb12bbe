"""The built site's files, with each language's own "page not found"."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path

import anyio.to_thread
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

NOT_FOUND = "404.html"


class SiteFiles(StaticFiles):
    """The static site. A missing page under /<lang>/ answers with that language's 404 page
    (each language is its own build, with its own 404.html), not the default language's."""

    def __init__(self, directory: Path, languages: Collection[str]) -> None:
        super().__init__(directory=directory, html=True)
        self._languages = frozenset(languages)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        lang = path.split(os.sep, 1)[0]
        if response.status_code != 404 or lang not in self._languages:
            return response
        own = os.path.join(lang, NOT_FOUND)
        full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, own)
        if stat_result and stat.S_ISREG(stat_result.st_mode):
            return FileResponse(full_path, stat_result=stat_result, status_code=404)
        return response

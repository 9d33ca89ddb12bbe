"""The inbox benchmark (bench/inbox.py) in a quick form, on each database: it still fills,
serves, signs in and measures every page, so it cannot rot between the runs that use its
full size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_quick_inbox_bench_measures_every_page(tmp_path: Path, kind: str) -> None:
    figures_file = tmp_path / "inbox.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "inbox.py"),
            *("--reports", "2000", "--baseline", "200", "--requests", "20", "--sign-ins", "1"),
            *("--databases", kind, "--json", str(figures_file)),
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    shown = run.stdout + run.stderr
    assert figures_file.exists(), shown
    (figures,) = json.loads(figures_file.read_text(encoding="utf-8")).values()
    assert list(json.loads(figures_file.read_text(encoding="utf-8"))) == [kind], shown
    assert figures["sizes"] == [200, 2000], shown
    views = {"open", "new", "mine", "closed", "overdue", "messages", "awaiting"}
    names = {"open, deep page", "report page", *views}
    assert set(figures["pages"]) == names, shown
    for name, page in figures["pages"].items():
        # Every answer was a 200 showing reports (or the report's text): the timings are
        # of working pages. The bars themselves are for the full size, on a quiet machine.
        assert page["failed"] == 0, (name, shown)
        assert 0 < page["2000"]["p50_ms"] < 1000, (name, shown)
    assert figures["sign_in"]["failed"] == 0, shown
    assert figures["sign_in"]["password_s"] >= 1.0, shown  # the fixed answer time holds
    assert run.returncode in (0, 1), shown  # 1: a bar missed on a busy machine, not a crash

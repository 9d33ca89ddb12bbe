"""The flood test (bench/flood.py) in its short form: its bars hold against the real service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]


def test_the_short_flood_keeps_every_bar(tmp_path: Path) -> None:
    figures_file = tmp_path / "flood.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "flood.py"), "--short", "--json", str(figures_file)],
        capture_output=True,
        text=True,
        timeout=200,
    )
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    shown = run.stdout + run.stderr
    # Each bar on its own, so a failure names the one that broke.
    assert figures["tipster_sent"] >= 10, shown
    assert figures["tipster_accepted"] >= 0.99 * figures["tipster_sent"], shown
    assert figures["healthy_after"] and figures["server_errors"] == 0, shown
    assert not figures["tipster_errors"], shown
    assert figures["tipster_p99_ms"] < 500, shown
    assert figures["flood_requests"] > 100, shown  # it was a flood
    assert 0 < figures["flood_accepted"] <= figures["flood_limit"], shown
    assert figures["undelivered"] == 0, shown
    for partner, box in figures["partners"].items():
        if box["routed"]:
            assert box["messages"] < figures["flood_accepted"], (partner, shown)
            assert box["flagged_messages"] <= figures["digest_windows"], (partner, shown)
            assert box["largest_digest"] > 1, (partner, shown)
    assert all(ok for _, ok in figures["bars"]), shown
    assert run.returncode == 0, shown

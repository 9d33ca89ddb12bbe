"""Dependency hygiene: pins at or above the fixed releases, and an audit that cannot lie."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from outreach.audit_deps import NOT_CHECKED, PASSED, VULNERABLE, judge
from tests.conftest import REPO, free_port

CONSTRAINTS = REPO / "constraints.txt"
# Releases that fixed published advisories: never pin below them.
FIXED_RELEASES = {"python-multipart": "0.0.31", "starlette": "1.3.1"}
LAST_VULNERABLE = {"python-multipart": "0.0.30", "starlette": "1.3.0"}


def pins(path: Path = CONSTRAINTS) -> dict[str, Version]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = Version(version)
    return found


@pytest.mark.parametrize(("name", "fixed"), FIXED_RELEASES.items())
def test_the_lock_file_pins_at_or_above_the_fixed_release(name: str, fixed: str) -> None:
    assert pins()[name] >= Version(fixed), f"{name} is pinned below {fixed}"


@pytest.mark.parametrize(("name", "fixed"), FIXED_RELEASES.items())
def test_pyproject_never_allows_a_release_below_the_fix(name: str, fixed: str) -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    [spec] = [Requirement(m) for m in re.findall(r'"([^"]+)"', text) if m.startswith(name)]
    assert Version(LAST_VULNERABLE[name]) not in spec.specifier
    assert Version(fixed) in spec.specifier


def test_every_line_of_the_lock_file_is_an_exact_pin() -> None:
    lines = [x for x in CONSTRAINTS.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9_.+!\-]*", x) for x in lines)
    assert "pip-audit" in pins(), "make audit needs pip-audit in the dev dependencies"


# -- the audit ---------------------------------------------------------------------------


def audit(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "outreach.audit_deps", "--cache-dir", str(cache), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


class FakeOsv(BaseHTTPRequestHandler):
    """An OSV query endpoint on loopback that knows one advisory (or none)."""

    advisories: ClassVar[dict[str, dict[str, Any]]] = {}
    queried: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = query["package"]["name"]
        FakeOsv.queried.append(name)
        body = json.dumps({"vulns": [FakeOsv.advisories[name]]} if name in self.advisories else {})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def osv() -> Iterator[str]:
    FakeOsv.advisories, FakeOsv.queried = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def unreachable() -> str:
    return f"http://127.0.0.1:{free_port()}/v1/query"  # nothing listens there


def test_an_unreachable_database_fails_and_says_so(tmp_path: Path) -> None:
    result = audit("--service", "osv", "--osv-url", unreachable(), cache=tmp_path)
    assert result.returncode == NOT_CHECKED
    assert "Dependency audit FAILED: the vulnerability database could not be reached" in (
        result.stderr
    )
    assert "OFFLINE=1" in result.stderr
    assert "passed" not in result.stdout + result.stderr


def test_offline_an_unreachable_database_is_a_declared_skip(tmp_path: Path) -> None:
    result = audit("--offline", "--service", "osv", "--osv-url", unreachable(), cache=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Dependency audit SKIPPED (offline):")
    assert "NOT checked" in result.stdout


def test_a_reachable_database_checks_every_pinned_package(osv: str, tmp_path: Path) -> None:
    result = audit("--service", "osv", "--osv-url", osv, cache=tmp_path)
    assert result.returncode == PASSED, result.stderr
    assert f"no known vulnerabilities in the {len(pins())} packages" in result.stdout
    assert sorted(set(FakeOsv.queried)) == sorted(pins())


def test_a_known_vulnerability_fails_even_offline(osv: str, tmp_path: Path) -> None:
    version = str(pins()["python-multipart"])
    FakeOsv.advisories["python-multipart"] = {
        "id": "GHSA-test-0000-0000",
        "aliases": ["CVE-2099-0001"],
        "summary": "A made-up advisory for this test",
        "affected": [
            {
                "package": {"name": "python-multipart", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99"}]}],
                "versions": [version],
            }
        ],
    }
    result = audit("--offline", "--service", "osv", "--osv-url", osv, cache=tmp_path)
    assert result.returncode == VULNERABLE
    assert "Dependency audit FAILED: known vulnerabilities" in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("  python-multipart")]
    assert line.startswith(f"  python-multipart {version}: ")
    assert "GHSA-test-0000-0000" in line and "CVE-2099-0001" in line
    assert line.endswith("(fixed in 99)")


def test_skipped_packages_are_not_a_pass() -> None:
    # What pip-audit writes (and exits 0 with) when the PyPI JSON API answers 404 to all.
    report = {
        "dependencies": [
            {"name": "starlette", "skip_reason": "Dependency not found on PyPI"},
            {"name": "pyrage", "version": "1.4.0", "vulns": []},
        ]
    }
    verdict = judge(report, "", "constraints.txt")
    assert verdict.status == NOT_CHECKED
    assert "1 of 2 packages pinned in constraints.txt were not checked" in verdict.message
    assert judge({"dependencies": []}, "", "constraints.txt").status == NOT_CHECKED
    assert judge(None, "ConnectionError: refused\n", "c.txt").message.endswith(
        "(ConnectionError: refused)"
    )


@pytest.mark.parametrize(("offline", "flag"), [("1", True), ("", False), ("0", False)])
def test_make_audit_passes_offline_only_when_asked(offline: str, flag: bool) -> None:
    result = subprocess.run(
        ["make", "-n", "audit", f"OFFLINE={offline}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [line] = [x for x in result.stdout.splitlines() if "outreach.audit_deps" in x]
    assert "--requirements constraints.txt" in line
    assert ("--offline" in line) is flag
